"""Every input bounded, every mistake exit 2 (issue 16 §6).

The cases a hostile tester found (a traceback or a C++ abort each) are named one by one; property-based
tests then throw hostile values at scenario, fleet, demand CSV, overrides and plan.json inputs and check
that the planner only ever exits 0, 1 or 2, prints no traceback, and writes nothing when it exits 2.
They stop after input checking (`planner scenario check`, `planner demand`, `planner validate`), so they
never run a long solve.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
from functools import cache
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import planner.scenario as scenario_module
from planner import cli
from planner.demand import desa_of_network
from planner.errors import InputError
from planner.network import load_network, read_overrides
from planner.plan import write_plan

ROOT = Path(__file__).resolve().parents[1]
NETWORK = ROOT / "networks" / "kaltim"
COMMON = ROOT / "scenarios" / "common"
FIGURES = NETWORK / "source" / "kpu_pilkada_2024.csv"
BONTANG = "64.74"
FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
FUZZ_SLOW = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))  # ~1 s each

HOSTILE_NUMBERS = [-5, 0, 1e-9, 0.5, 1e16, 6e19, 1e300, 1e308, math.inf, -math.inf, math.nan, 100_000, 2**63]
HOSTILE_TEXT = [
    "",
    " ",
    "nan",
    "inf",
    "-1",
    "1e16",
    "6e19",
    "=1+1",
    "x" * 300,
    "\u200b",
    "../../etc/passwd",
    "{{7*7}}",
]
HOSTILE = st.one_of(
    st.sampled_from(HOSTILE_NUMBERS),
    st.sampled_from(HOSTILE_TEXT),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@pytest.fixture(scope="module", autouse=True)
def cached_network():
    """The Kaltim network and desa table read once for the module (the CLI reads them on every call)."""
    loaders = scenario_module.Loaders(network=cache(load_network), desa=cache(desa_of_network))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scenario_module.load_scenario, "__defaults__", (loaders,))
        patch.setattr(scenario_module.load_inputs, "__defaults__", (loaders,))
        yield


def base_scenario() -> dict:
    """Bontang, the smallest kabupaten, with absolute paths and small search budgets."""
    return {
        "name": "hostile",
        "network": str(NETWORK),
        "demand": {
            "source": "allocation",
            "figures": str(FIGURES),
            "province_dpt": 2821202,
            "kecamatan_dpt": str(COMMON / "kpu-kecamatan-dpt-2024.csv"),
            "elections": 2,
        },
        "catalog": str(COMMON / "items.csv"),
        "fleet": str(COMMON / "fleet-kaltim.yaml"),
        "calendar": {
            "timezone": "Asia/Makassar",
            "start": "2024-11-23T06:00:00+08:00",
            "ppk_deadline": "2024-11-24T18:00:00+08:00",
            "pps_deadline": "2024-11-25T18:00:00+08:00",
        },
        "kabupaten": [BONTANG],
        "solver": {"time_limit_s": 5, "seed": 1, "deterministic": True, "workers": 1},
    }


def base_fleet() -> dict:
    return yaml.safe_load((COMMON / "fleet-kaltim.yaml").read_text(encoding="utf-8"))


def write_yaml(path: Path, raw: object) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def voters_rows() -> list[dict]:
    desa = desa_of_network(NETWORK)
    codes = desa.loc[desa["kabupaten_code"] == BONTANG, "desa_code"]
    return [{"desa_code": code, "tps": "10", "dpt": "3000"} for code in codes]


def csv_text(rows: list[dict], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def files_below(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def run(args: list[str], capsys) -> tuple[int, str]:
    """`planner ARGS` in this process: exit code and all it printed. Any other exception fails the test."""
    try:
        cli.main([str(a) for a in args])
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output
    assert code in (0, 1, 2), output
    return code, output


# ---------------------------------------------------------------- the cases found, one by one


@pytest.mark.parametrize(
    "option",
    [
        ["--time-limit", "-5"],
        ["--time-limit", "1e308"],
        ["--time-limit", "nan"],
        ["--time-limit", "inf"],
        ["--workers", "0"],
        ["--workers", "100000"],
    ],
)
def test_bad_solver_options_exit_2_before_any_work(option, tmp_path, capsys):
    scenario = write_yaml(tmp_path / "s.yaml", base_scenario())
    code, output = run(["solve", scenario, "--out", tmp_path / "out", *option], capsys)
    assert code == 2 and option[0] in output
    assert not (tmp_path / "out").exists()


def _set(raw: dict, path: str, value: object) -> dict:
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return raw


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("solver.options", {"junk": 1}, "solver.options"),
        ("solver.options", {"seed_share": "lots"}, "seed_share"),
        ("solver.options", {"solution_limit": 10**30}, "solution_limit"),
        ("solver.time_limit_s", 1e308, "solver.time_limit_s"),
        ("solver.workers", 100000, "solver.workers"),
        ("solver.seed", 2**70, "solver.seed"),
        ("kabupaten", [], "kabupaten"),
        ("demand.province_dpt", 6 * 10**19, "demand.province_dpt"),
        ("calendar.pps_deadline", "2025-11-25T18:00:00+08:00", "calendar.pps_deadline"),
        ("description", "x" * 100_000, "description"),
    ],
)
def test_scenario_fields_out_of_bounds_exit_2_naming_the_field(field, value, named, tmp_path, capsys):
    scenario = write_yaml(tmp_path / "s.yaml", _set(base_scenario(), field, value))
    code, output = run(["scenario", "check", scenario], capsys)
    assert code == 2 and named in output
    assert len(output) < 2_000  # never the whole value back


def test_a_key_given_twice_is_refused_not_silently_won(tmp_path, capsys):
    text = yaml.safe_dump(base_scenario(), sort_keys=False) + 'kabupaten: ["64.11"]\n'
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    code, output = run(["scenario", "check", tmp_path / "s.yaml"], capsys)
    assert code == 2 and "'kabupaten' is given twice" in output


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda f: f["vehicle_types"]["truck"].update(capacity_kg=1e308), "vehicle_types.truck.capacity_kg"),
        (
            lambda f: f["vehicle_types"]["truck"].update(speed_kmh={"road": 1e-9}),
            "vehicle_types.truck.speed_kmh",
        ),
        (lambda f: f["vehicle_types"]["truck"].update(load_min=10**9), "vehicle_types.truck.load_min"),
        (
            lambda f: f["vehicle_types"]["truck"].update(cost_per_day=1e300),
            "vehicle_types.truck.cost_per_day",
        ),
        (lambda f: f["bases"][0].update(count=100_000), "bases[0].count"),
        (lambda f: f["bases"].append({"type": "pickup", "at": "each_ppk", "count": 400}), "bases: "),
    ],
)
def test_fleet_values_out_of_bounds_exit_2_naming_the_file_and_field(change, named, tmp_path, capsys):
    fleet = base_fleet()
    change(fleet)
    fleet_path = write_yaml(tmp_path / "fleet.yaml", fleet)
    scenario = write_yaml(tmp_path / "s.yaml", {**base_scenario(), "fleet": str(fleet_path)})
    code, output = run(["scenario", "check", scenario], capsys)
    assert code == 2 and named in output and "fleet.yaml" in output


def test_a_fleet_pointing_at_another_file_quotes_at_most_a_line_of_it(tmp_path, capsys):
    secret = tmp_path / "private.txt"
    secret.write_text("\n".join(f"secret line {i}: {'s' * 60}" for i in range(200)) + "\n", encoding="utf-8")
    for target in (secret, ROOT / "planner" / "fleet.py", ROOT / "networks" / "kaltim" / "network.gpkg"):
        scenario = write_yaml(tmp_path / "s.yaml", {**base_scenario(), "fleet": str(target)})
        code, output = run(["scenario", "check", scenario], capsys)
        assert code == 2 and str(target.name) in output
        assert "secret line 1:" not in output and "import" not in output
        assert max(len(line) for line in output.splitlines()) < 400


@pytest.mark.parametrize(
    ("cell", "value", "named"),
    [("tps", "1e16", "tps"), ("tps", "nan", "tps"), ("dpt", "6e19", "dpt"), ("tps", "-1", "tps")],
)
def test_desa_voters_out_of_bounds_exit_2_and_write_nothing(cell, value, named, tmp_path, capsys):
    rows = voters_rows()
    rows[0][cell] = value
    (tmp_path / "voters.csv").write_text(csv_text(rows, ["desa_code", "tps", "dpt"]), encoding="utf-8")
    raw = {**base_scenario(), "demand": {"source": "csv", "path": str(tmp_path / "voters.csv")}}
    scenario = write_yaml(tmp_path / "s.yaml", raw)
    code, output = run(["demand", scenario, "--out", tmp_path / "out"], capsys)
    assert code == 2 and f"{named}:" in output and "voters.csv: line 2" in output
    assert not (tmp_path / "out").exists()


def test_published_figures_out_of_bounds_exit_2(tmp_path, capsys):
    text = FIGURES.read_text(encoding="utf-8").replace(",613202,", ",60000000000000000000,")
    (tmp_path / "figures.csv").write_text(text, encoding="utf-8")
    raw = _set(base_scenario(), "demand.figures", str(tmp_path / "figures.csv"))
    code, output = run(["scenario", "check", write_yaml(tmp_path / "s.yaml", raw)], capsys)
    assert code == 2 and "dpt: must be at most" in output


OVERRIDE_COLUMNS = ["action", "target", "mode", "from_node", "to_node", "length_km", "note"]
GOOD_ADD = {
    "action": "add",
    "target": "",
    "mode": "road",
    "from_node": "ppk:64.74.01",
    "to_node": "ppk:64.74.02",
}


@pytest.mark.parametrize("length", ["nan", "inf", "1e300", "-3", "0", "abc"])
def test_override_lengths_must_be_finite_and_plausible(length, tmp_path):
    path = tmp_path / "overrides.csv"
    path.write_text(csv_text([{**GOOD_ADD, "length_km": length}], OVERRIDE_COLUMNS), encoding="utf-8")
    with pytest.raises(InputError, match="row 2: length_km"):
        read_overrides(path)


def test_override_self_loops_binary_files_and_a_bom(tmp_path):
    path = tmp_path / "overrides.csv"
    loop = {**GOOD_ADD, "to_node": GOOD_ADD["from_node"]}
    path.write_text(csv_text([loop], OVERRIDE_COLUMNS), encoding="utf-8")
    with pytest.raises(InputError, match="to itself"):
        read_overrides(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" * 50)
    with pytest.raises(InputError, match="not UTF-8"):
        read_overrides(path)
    path.write_text(csv_text([{**GOOD_ADD, "length_km": "4.5"}], OVERRIDE_COLUMNS), encoding="utf-8-sig")
    [row] = read_overrides(path)  # a BOM, as Excel writes it, is not part of the first column name
    assert (row.action, row.length_km) == ("add", "4.5")


def test_the_shipped_overrides_still_read():
    assert len(read_overrides(NETWORK / "overrides.csv")) > 0


# ---------------------------------------------------------------- property-based: hostile values anywhere

SCENARIO_FIELDS = [
    "name",
    "network",
    "catalog",
    "fleet",
    "kabupaten",
    "blocked_legs",
    "demand.province_dpt",
    "demand.elections",
    "demand.kelurahan_factor",
    "demand.area_exponent",
    "demand.source",
    "calendar.start",
    "calendar.pps_deadline",
    "calendar.timezone",
    "solver.time_limit_s",
    "solver.seed",
    "solver.solution_limit",
    "solver.workers",
    "solver.options.seed_iterations",
    "solver.options.solution_limit",
    "solver.options.seed_share",
    "solver.options.first_solution",
    "solver.options.junk",
]


@FUZZ
@given(changes=st.lists(st.tuples(st.sampled_from(SCENARIO_FIELDS), HOSTILE), min_size=1, max_size=3))
def test_hostile_scenarios_exit_0_or_2_without_traceback(changes, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("scenario")
    raw = base_scenario()
    for field, value in changes:
        _set(raw, field, value)
    try:
        scenario = write_yaml(folder / "s.yaml", raw)
    except (UnicodeEncodeError, yaml.YAMLError):
        return
    before = files_below(folder)
    code, _ = run(["scenario", "check", scenario], capsys)
    assert code in (0, 2)
    assert files_below(folder) == before


TYPE_FIELDS = [
    "capacity_kg",
    "capacity_m3",
    "speed_kmh",
    "rapids_speed_kmh",
    "load_min",
    "unload_min",
    "cost_per_km",
    "cost_per_day",
    "operating_hours",
    "tier",
    "modes",
    "name",
]
BASE_FIELDS = ["type", "at", "count", "kabupaten"]


@FUZZ
@given(
    type_changes=st.lists(
        st.tuples(st.sampled_from(["truck", "pickup", "longboat"]), st.sampled_from(TYPE_FIELDS), HOSTILE),
        max_size=3,
    ),
    base_changes=st.lists(st.tuples(st.integers(0, 30), st.sampled_from(BASE_FIELDS), HOSTILE), max_size=2),
)
def test_hostile_fleets_exit_0_or_2_without_traceback(type_changes, base_changes, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("fleet")
    fleet = base_fleet()
    for type_id, field, value in type_changes:
        fleet["vehicle_types"][type_id][field] = value
    for index, field, value in base_changes:
        fleet["bases"][index % len(fleet["bases"])][field] = value
    try:
        fleet_path = write_yaml(folder / "fleet.yaml", fleet)
    except (UnicodeEncodeError, yaml.YAMLError):
        return
    scenario = write_yaml(folder / "s.yaml", {**base_scenario(), "fleet": str(fleet_path)})
    code, output = run(["scenario", "check", scenario], capsys)
    assert code in (0, 2)
    if code == 2:
        assert "fleet.yaml" in output


CELLS = st.one_of(
    st.sampled_from(HOSTILE_TEXT), st.text(max_size=12), st.integers().map(str), st.floats().map(str)
)


@FUZZ_SLOW
@given(
    changes=st.lists(
        st.tuples(st.integers(0, 14), st.sampled_from(["desa_code", "tps", "dpt"]), CELLS),
        min_size=1,
        max_size=3,
    ),
    prefix=st.sampled_from(["", "\ufeff", "\x00", "\xff\xfe"]),
)
def test_hostile_demand_csv_exits_0_or_2_and_writes_nothing_on_2(changes, prefix, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("demand")
    rows = voters_rows()
    for index, column, value in changes:
        rows[index % len(rows)][column] = value
    try:
        (folder / "voters.csv").write_text(
            prefix + csv_text(rows, ["desa_code", "tps", "dpt"]), encoding="utf-8"
        )
    except UnicodeEncodeError:
        return
    raw = {**base_scenario(), "demand": {"source": "csv", "path": str(folder / "voters.csv")}}
    scenario = write_yaml(folder / "s.yaml", raw)
    code, _ = run(["demand", scenario, "--out", folder / "out"], capsys)
    assert code in (0, 2)
    assert (folder / "out").exists() == (code == 0)


@FUZZ
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "action": st.sampled_from(
                    ["add", "close", "open", "remove", "set_mode", "no_road", "", "drop"]
                ),
                "target": CELLS,
                "mode": st.sampled_from(["road", "river", "sea", "", "air"]),
                "from_node": st.sampled_from(["ppk:64.74.01", "ppk:64.74.02", "", "x"]),
                "to_node": st.sampled_from(["ppk:64.74.01", "ppk:64.74.02", "", "x"]),
                "length_km": CELLS,
                "note": CELLS,
            }
        ),
        max_size=4,
    ),
    raw_bytes=st.binary(max_size=40),
)
def test_hostile_overrides_are_read_or_refused_with_an_input_error(rows, raw_bytes, tmp_path_factory):
    path = tmp_path_factory.mktemp("overrides") / "overrides.csv"
    for data in (csv_text(rows, OVERRIDE_COLUMNS).encode("utf-8", "surrogatepass"), raw_bytes):
        path.write_bytes(data)
        try:
            read = read_overrides(path)
        except InputError as err:
            assert all(len(line) < 400 for line in str(err).splitlines())
            continue
        for row in read:
            if row.length_km:
                assert 0 < float(row.length_km) <= 3_000


@pytest.fixture(scope="module")
def solved_plan(tmp_path_factory):
    """A plan of Bontang (deterministic, tiny budgets) and its scenario file, to be broken."""
    from planner.pipeline import make_plan, problem_of, search_settings

    folder = tmp_path_factory.mktemp("plan")
    raw = _set(base_scenario(), "solver.options", {"seed_iterations": 200, "solution_limit": 20})
    scenario = write_yaml(folder / "s.yaml", raw)
    problem = problem_of(scenario_module.load_inputs(scenario_module.load_scenario(scenario)))
    plan = make_plan(problem, search_settings(problem, 5.0, deterministic=True))
    write_plan(plan, folder / "plan.json")
    return scenario, json.loads((folder / "plan.json").read_text(encoding="utf-8"))


def _plan_leaves(node: object, path: tuple = ()) -> list[tuple]:
    """Paths to the scalar values of a plan (what a hostile sender edits)."""
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in _plan_leaves(value, (*path, key))]
    if isinstance(node, list):
        return [leaf for i, value in enumerate(node[:3]) for leaf in _plan_leaves(value, (*path, i))]
    return [path]


# Values a hostile plan puts in place of a field. Left out: the three shapes that crash the validator on
# this branch (an empty stops list, a date without offset, deep nesting); issue 16 §3 fixes them and
# tests/test_hostile_validate.py covers them.
PLAN_VALUES = st.one_of(
    st.sampled_from(
        [-1, 0, 10**30, 1e308, "", "x" * 200, None, True, "2024-11-23T05:00:00+08:00", "{{7*7}}"]
    ),
    st.integers(),
    st.text(max_size=10),
)


@FUZZ
@given(data=st.data())
def test_hostile_plans_exit_0_1_or_2_without_traceback(data, solved_plan, tmp_path_factory, capsys):
    scenario, plan = solved_plan
    broken = copy.deepcopy(plan)
    leaves = _plan_leaves(broken)
    for _ in range(data.draw(st.integers(1, 3))):
        *parents, last = data.draw(st.sampled_from(leaves))
        node = broken
        for key in parents:
            node = node[key]
        node[last] = data.draw(PLAN_VALUES)
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    try:
        path.write_text(json.dumps(broken, ensure_ascii=False), encoding="utf-8")
    except UnicodeEncodeError:
        return
    code, output = run(["validate", path, scenario], capsys)
    assert code in (0, 1, 2), output
