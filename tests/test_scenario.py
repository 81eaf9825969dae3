"""Scenario files: the shipped ones load; every bad input is reported with its file and field path."""

from __future__ import annotations

import copy
import datetime as dt
import shutil
from functools import cache
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from planner.cli import build_app, main
from planner.demand import desa_of_network
from planner.errors import InputError
from planner.network import load_network
from planner.scenario import Loaders, Scenario, load_inputs, load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
COMMON = ROOT / "scenarios" / "common"
NETWORK = ROOT / "networks" / "kaltim"


@pytest.fixture(scope="module")
def loaders() -> Loaders:
    return Loaders(network=cache(load_network), desa=cache(desa_of_network))


def valid_raw() -> dict:
    """A valid scenario (Mahakam Ulu) with absolute paths, to be broken one field at a time."""
    raw = yaml.safe_load((ROOT / "scenarios" / "mahulu-river.yaml").read_text(encoding="utf-8"))
    raw["network"] = str(NETWORK)
    raw["catalog"] = str(COMMON / "items.csv")
    raw["fleet"] = str(COMMON / "fleet-kaltim.yaml")
    raw["demand"]["figures"] = str(NETWORK / "source" / "kpu_pilkada_2024.csv")
    raw["demand"]["kecamatan_dpt"] = str(COMMON / "kpu-kecamatan-dpt-2024.csv")
    return raw


def write(folder: Path, raw: dict, name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def problems_of(path: Path, loaders: Loaders) -> str:
    with pytest.raises(InputError) as err:
        load_scenario(path, loaders)
    return str(err.value)


# ---------------------------------------------------------------- the shipped scenarios


def test_the_required_scenarios_are_shipped():
    names = {p.stem for p in SCENARIOS}
    assert {"kaltim-2024", "mahulu-river", "kutim-lanal-sea", "berau-islands"} <= names
    blocked = [p for p in SCENARIOS if yaml.safe_load(p.read_text(encoding="utf-8")).get("blocked_legs")]
    assert blocked, "one scenario must block a leg"


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_each_scenario_loads_with_its_inputs(path, loaders):
    scenario = load_scenario(path, loaders)
    assert scenario.name == path.stem and scenario.source == path
    inputs = load_inputs(scenario, loaders)
    chosen = set(inputs.kabupaten)
    assert set(inputs.demand.pps["kabupaten_code"]) == chosen
    assert {v.kabupaten_code for v in inputs.fleet.vehicles} == chosen
    assert len(inputs.items) == 14
    legs = inputs.network.legs
    assert set(legs.index[legs["status"] == "blocked"]) == set(scenario.blocked_legs)
    calendar = scenario.calendar
    assert str(calendar.start_local.tzinfo) == "Asia/Makassar"
    assert calendar.start_local < calendar.ppk_deadline_local <= calendar.pps_deadline_local
    assert calendar.pps_deadline_local == dt.datetime(2024, 11, 25, 18, tzinfo=calendar.start_local.tzinfo)


def test_kabupaten_scenarios_plan_only_their_kabupaten(loaders):
    expected = {"mahulu-river": ["64.11"], "kutim-lanal-sea": ["64.08"], "berau-islands": ["64.03"]}
    for name, codes in expected.items():
        scenario = load_scenario(ROOT / "scenarios" / f"{name}.yaml", loaders)
        assert scenario.kabupaten_codes(loaders.network(NETWORK)) == codes
    whole = load_scenario(ROOT / "scenarios" / "kaltim-2024.yaml", loaders)
    assert len(whole.kabupaten_codes(loaders.network(NETWORK))) == 10


def test_paths_are_relative_to_the_scenario_file(tmp_path, monkeypatch, loaders):
    folder = tmp_path / "plans"
    folder.mkdir()
    shutil.copy(COMMON / "items.csv", folder / "my-items.csv")
    raw = valid_raw()
    raw["catalog"] = "my-items.csv"
    path = write(folder, raw)
    monkeypatch.chdir(tmp_path)
    scenario = load_scenario(Path("plans") / "scenario.yaml", loaders)
    assert scenario.resolved_paths().catalog.resolve() == (folder / "my-items.csv").resolve()
    assert load_inputs(scenario, loaders).items[0].id == "kotak_suara"
    assert path.exists()


def test_csv_demand_source(tmp_path, loaders):
    rows = ["desa_code,tps,dpt"]
    desa = loaders.desa(NETWORK)
    rows += [f"{code},2,700" for code in desa.loc[desa["kabupaten_code"] == "64.11", "desa_code"]]
    (tmp_path / "dpt.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    raw = valid_raw()
    raw["demand"] = {"source": "csv", "path": "dpt.csv", "elections": 2}
    inputs = load_inputs(load_scenario(write(tmp_path, raw), loaders), loaders)
    assert inputs.demand.pps["tps"].sum() == 2 * len(rows[1:])
    assert (inputs.demand.pps["dpt"] == 700).all()


# ---------------------------------------------------------------- each bad input, with file and field


def fleet_with(tmp_path: Path, change) -> str:
    fleet = yaml.safe_load((COMMON / "fleet-kaltim.yaml").read_text(encoding="utf-8"))
    change(fleet)
    path = tmp_path / "fleet-bad.yaml"
    path.write_text(yaml.safe_dump(fleet), encoding="utf-8")
    return str(path)


def _rule(**changes) -> dict:
    """An assign rule of Mahakam Ulu: Long Hurai by the Ujoh Bilang speedboats."""
    rule = {"name": "Long Hurai by speedboat", "desa": ["64.11.01.2001"], "base": "port:ujoh_bilang"}
    return {**rule, "vehicle_type": "speedboat", **changes}


BAD_CASES = {
    "unknown leg id": (
        lambda raw, tmp: raw.update(blocked_legs=["road:pps:64.11.01.2001-pps:64.99.99.9999"]),
        "scenario.yaml: blocked_legs[0]: unknown leg id 'road:pps:64.11.01.2001-pps:64.99.99.9999'",
    ),
    "unknown node": (
        lambda raw, tmp: raw.update(
            fleet=fleet_with(
                tmp, lambda f: f["bases"].insert(0, {"type": "truck", "at": "port:nowhere", "count": 1})
            )
        ),
        "fleet-bad.yaml: bases[0].at: unknown node 'port:nowhere'",
    ),
    "negative capacity": (
        lambda raw, tmp: raw.update(
            fleet=fleet_with(tmp, lambda f: f["vehicle_types"]["longboat"].update(capacity_kg=-1500))
        ),
        "fleet-bad.yaml: vehicle_types.longboat.capacity_kg: must be greater than 0 (got -1500)",
    ),
    "missing file": (
        lambda raw, tmp: raw.update(catalog="no-such-items.csv"),
        "scenario.yaml: catalog: file not found:",
    ),
    "vehicle type with no mode": (
        lambda raw, tmp: raw.update(
            fleet=fleet_with(tmp, lambda f: f["vehicle_types"]["truck"].update(modes=[]))
        ),
        "fleet-bad.yaml: vehicle_types.truck.modes: must not be empty",
    ),
    "deadline before the start": (
        lambda raw, tmp: raw["calendar"].update(ppk_deadline="2024-11-22T18:00:00+08:00"),
        "scenario.yaml: calendar.ppk_deadline: 2024-11-22 18:00 is not after the start 2024-11-23 06:00",
    ),
    "unknown kabupaten": (
        lambda raw, tmp: raw.update(kabupaten=["64.99"]),
        "scenario.yaml: kabupaten[0]: unknown kabupaten '64.99'",
    ),
    "network not built": (
        lambda raw, tmp: raw.update(network=str(tmp)),
        "scenario.yaml: network:",
    ),
    "missing demand csv": (
        lambda raw, tmp: raw.update(demand={"source": "csv", "path": "real-dpt.csv"}),
        "scenario.yaml: demand.path: file not found:",
    ),
    "misspelt field": (
        lambda raw, tmp: raw["solver"].update(time_limit=30),
        "scenario.yaml: solver.time_limit: is not a known field",
    ),
    "assign: unknown desa": (
        lambda raw, tmp: raw.update(assign=[_rule(desa=["64.11.01.2001", "64.11.99.2001"])]),
        "scenario.yaml: assign[0].desa[1]: unknown desa '64.11.99.2001'",
    ),
    "assign: a PPK is not a desa": (
        lambda raw, tmp: raw.update(assign=[_rule(desa=["ppk:64.11.01"])]),
        "scenario.yaml: assign[0].desa[0]: unknown desa 'ppk:64.11.01'",
    ),
    "assign: desa pinned twice": (
        lambda raw, tmp: raw.update(assign=[_rule(), _rule(desa=["pps:64.11.01.2001"])]),
        "scenario.yaml: assign[1].desa[0]: 'pps:64.11.01.2001' is already pinned by assign[0]",
    ),
    "assign: base not a port": (
        lambda raw, tmp: raw.update(assign=[_rule(base="ppk:64.11.01")]),
        "scenario.yaml: assign[0].base: 'ppk:64.11.01' is not a port of the network",
    ),
    "assign: misspelt field": (
        lambda raw, tmp: raw.update(assign=[{**_rule(), "vessel": "navy_vessel"}]),
        "scenario.yaml: assign[0].vessel: is not a known field",
    ),
    "bad timezone": (
        lambda raw, tmp: raw["calendar"].update(timezone="Asia/Samarinda"),
        "scenario.yaml: calendar.timezone: unknown time zone 'Asia/Samarinda'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_is_rejected_with_its_message(case, tmp_path, loaders):
    change, expected = BAD_CASES[case]
    raw = valid_raw()
    change(raw, tmp_path)
    text = problems_of(write(tmp_path, raw), loaders)
    assert expected in text


def test_every_problem_is_reported_at_once(tmp_path, loaders):
    raw = valid_raw()
    for case in ("unknown leg id", "negative capacity", "missing file", "deadline before the start"):
        BAD_CASES[case][0](raw, tmp_path)
    raw["fleet"] = fleet_with(
        tmp_path,
        lambda f: (
            f["vehicle_types"]["longboat"].update(capacity_kg=-1500),
            f["vehicle_types"]["truck"].update(modes=[]),
            f["bases"].insert(0, {"type": "truck", "at": "port:nowhere", "count": 1}),
        ),
    )
    text = problems_of(write(tmp_path, raw), loaders)
    for case in (
        "unknown leg id",
        "negative capacity",
        "missing file",
        "deadline before the start",
        "vehicle type with no mode",
        "unknown node",
    ):
        assert BAD_CASES[case][1] in text, case
    assert "scenario has 6 problems" in text


def test_scenario_check_command(tmp_path):
    runner = CliRunner()
    good = runner.invoke(build_app(), ["scenario", "check", *map(str, SCENARIOS)], env={"COLUMNS": "200"})
    assert good.exit_code == 0, good.output
    assert f"{len(SCENARIOS)} scenario file(s) OK" in good.output
    raw = valid_raw()
    BAD_CASES["deadline before the start"][0](raw, tmp_path)
    bad = runner.invoke(build_app(), ["scenario", "check", str(write(tmp_path, raw))], env={"COLUMNS": "200"})
    assert bad.exit_code == 2
    assert "calendar.ppk_deadline" in bad.output and "Traceback" not in bad.output


def test_demand_command_on_a_bad_scenario_exits_2_without_traceback(tmp_path, capsys):
    raw = valid_raw()
    raw["catalog"] = "nope.csv"
    with pytest.raises(SystemExit) as exit_info:
        main(["demand", str(write(tmp_path, raw)), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "catalog: file not found" in err and "Traceback" not in err


# ---------------------------------------------------------------- malformed scenarios never give a traceback

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        ["all", "64.11", "csv", "allocation", "/", ".", "..", "06:00", "2024-11-23T06:00:00+08:00"]
    ),
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    st.lists(st.one_of(st.integers(), st.text(max_size=10)), max_size=3),
    st.dictionaries(
        st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8), st.none()), max_size=3
    ),
)
TOP_KEYS = [
    "name",
    "description",
    "network",
    "demand",
    "catalog",
    "fleet",
    "calendar",
    "kabupaten",
    "blocked_legs",
    "solver",
]
NESTED = {
    "calendar": ["timezone", "start", "ppk_deadline", "pps_deadline"],
    "demand": ["source", "path", "figures", "province_dpt", "kecamatan_dpt", "elections", "kelurahan_factor"],
    "solver": ["time_limit_s", "seed", "deterministic", "solution_limit", "workers", "options"],
}


@st.composite
def malformed_scenarios(draw) -> dict:
    raw = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        key = draw(st.sampled_from([*TOP_KEYS, "extra_field"]))
        action = draw(st.sampled_from(["replace", "delete", "nested"]))
        if action == "delete":
            raw.pop(key, None)
        elif action == "nested" and key in NESTED and isinstance(raw.get(key), dict):
            raw[key][draw(st.sampled_from([*NESTED[key], "oops"]))] = draw(JUNK)
        else:
            raw[key] = draw(JUNK)
    return raw


VALID = valid_raw()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=malformed_scenarios())
def test_malformed_scenarios_raise_input_error_only(raw, tmp_path_factory, loaders):
    folder = tmp_path_factory.mktemp("fuzz", numbered=True)
    path = folder / "scenario.yaml"
    try:
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    except UnicodeEncodeError:
        return
    try:
        scenario = load_scenario(path, loaders)
    except InputError as err:
        assert err.problems, str(err)
        assert all(": " in p for p in err.problems)
        return
    assert isinstance(scenario, Scenario)
    load_inputs(scenario, loaders)  # a scenario that passes the check also loads


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_arbitrary_text_is_rejected_cleanly(text, tmp_path_factory, loaders):
    path = tmp_path_factory.mktemp("text", numbered=True) / "scenario.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with pytest.raises(InputError):
        load_scenario(path, loaders)


def test_an_assign_rule_needs_a_vehicle_of_its_type_at_its_base(tmp_path, loaders):
    raw = valid_raw()
    raw["assign"] = [_rule(vehicle_type="navy_vessel")]
    scenario = load_scenario(write(tmp_path, raw), loaders)
    with pytest.raises(InputError) as err:
        load_inputs(scenario, loaders)
    text = str(err.value)
    assert "scenario.yaml" in text
    assert (
        "assign[0].vehicle_type: the fleet has no 'navy_vessel' at port:ujoh_bilang serving kabupaten 64.11"
        in text
    )


def test_an_assign_rule_pins_its_desa(tmp_path, loaders):
    raw = valid_raw()
    raw["assign"] = [_rule(desa=["64.11.01.2001", "pps:64.11.01.2002"])]
    scenario = load_scenario(write(tmp_path, raw), loaders)
    pinned = scenario.assignments()
    assert set(pinned) == {"pps:64.11.01.2001", "pps:64.11.01.2002"}
    assert {(a.base, a.type_id, a.rule) for a in pinned.values()} == {
        ("port:ujoh_bilang", "speedboat", "Long Hurai by speedboat")
    }
    load_inputs(scenario, loaders)  # the fleet has speedboats at Ujoh Bilang for Mahakam Ulu


def test_a_province_scenario_narrowed_to_one_kabupaten_keeps_its_rules_for_the_others(tmp_path, loaders):
    from planner.validate import expectations

    raw = valid_raw()  # Mahakam Ulu, with the province's Lanal rule for Kutai Timur
    raw["assign"] = [_rule(desa=["64.08.05.2018"], base="port:lanal_sangatta", vehicle_type="navy_vessel")]
    scenario = load_scenario(write(tmp_path, raw), loaders)
    assert expectations(load_inputs(scenario, loaders)).assigned == {}
