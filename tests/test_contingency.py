"""Contingency (N-1) analysis on Bontang (issue 6): cut-off desa, resume, bad leg files, local pool vs Dask."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from planner import cli
from planner.commands.batch import register
from planner.contingency import (
    IMPACT_COLUMNS,
    ContingencyOptions,
    case_path,
    leg_impact,
    rank_key,
    run_contingency,
)
from planner.contingency_report import summary_html, write_contingency_map
from planner.execution import Backend
from planner.network import Network, load_network
from planner.scenario import load_inputs, load_scenario

ROOT = Path(__file__).resolve().parents[1]
KABUPATEN = "64.74"  # Bontang: 3 PPK, 15 PPS, the smallest kabupaten
FAST_SOLVER = (
    "solver: {time_limit_s: 30, seed: 1, deterministic: true, workers: 1, "
    "options: {seed_iterations: 500, solution_limit: 50}}"
)


@dataclass(frozen=True)
class CutOff:
    """A scenario in which `leg` is the only link left to the desa `pps`, and a leg file to test."""

    scenario: Path
    leg: str
    pps: str
    leg_file: Path
    legs: list[str]


def _graph(network: Network, without: set[str] = frozenset()) -> nx.MultiGraph:
    open_legs = network.legs[network.legs["status"] == "open"]
    graph = nx.MultiGraph()
    for leg_id, leg in open_legs.iterrows():
        if leg_id not in without:
            graph.add_edge(leg["from_node"], leg["to_node"], key=leg_id)
    return graph


def _reached(network: Network, without: set[str]) -> set[str]:
    return nx.node_connected_component(_graph(network, without), f"wh:{KABUPATEN}")


def _find_cut_off(network: Network) -> tuple[str, str, list[str]]:
    """A Bontang desa (not hosting its PPK) whose outside links can all be closed but one road leg, such that
    only that desa depends on it: (desa, the road leg, the legs to close in the scenario)."""
    legs, nodes = network.legs, network.nodes
    access = legs[legs["mode"] == "access"]
    bontang = nodes[nodes["kabupaten_code"] == KABUPATEN]
    stops = set(bontang.index[bontang["kind"].isin(["pps", "ppk"])])
    hosts = set(bontang.loc[bontang["kind"] == "ppk", "host"])
    candidates = []
    for pps in sorted(bontang.index[bontang["kind"] == "pps"]):
        if pps in hosts:
            continue
        group = {pps, *access.loc[access["from_node"] == pps, "to_node"]}
        group |= set(access.loc[access["to_node"] == pps, "from_node"])
        crossing = legs[
            (legs["mode"] != "access") & (legs["from_node"].isin(group) != legs["to_node"].isin(group))
        ]
        roads = sorted(crossing.index[crossing["mode"] == "road"])
        if roads and len(crossing) >= 2:
            candidates.append((len(crossing), pps, roads[0], sorted(set(crossing.index) - {roads[0]})))
    for _, pps, keep, close in sorted(candidates):
        closed = set(close)
        if stops <= _reached(network, closed) and stops - _reached(network, closed | {keep}) == {pps}:
            return pps, keep, close
    raise AssertionError("no Bontang desa can be left with a single link")


@pytest.fixture(scope="module")
def cut_off(tmp_path_factory) -> CutOff:
    folder = tmp_path_factory.mktemp("contingency")
    network = load_network(ROOT / "networks" / "kaltim")
    pps, keep, close = _find_cut_off(network)
    text = (ROOT / "scenarios" / "kaltim-2024.yaml").read_text(encoding="utf-8")
    text = text.replace("name: kaltim-2024", "name: bontang-contingency")
    text = text.replace("kabupaten: all", f'kabupaten: ["{KABUPATEN}"]')
    text = text.replace("blocked_legs: []", f"blocked_legs: {json.dumps(close)}")
    text = text.replace("../networks", str(ROOT / "networks")).replace(
        "common/", f"{ROOT / 'scenarios/common'}/"
    )
    text = "\n".join(FAST_SOLVER if line.startswith("solver:") else line for line in text.splitlines()) + "\n"
    scenario = folder / "bontang.yaml"
    scenario.write_text(text, encoding="utf-8")
    # the PPK's own desa is where the tier-2 trucks start: its roads carry traffic
    ppk_desa = network.nodes.loc[f"ppk:{pps.split(':')[1][:8]}", "host"]
    roads = network.legs[(network.legs["mode"] == "road") & (network.legs["status"] == "open")]
    busy = sorted(roads.index[(roads["from_node"] == ppk_desa) | (roads["to_node"] == ppk_desa)])
    legs = [keep, *[leg for leg in busy if leg != keep and leg not in close][:2]]
    leg_file = folder / "legs.txt"
    leg_file.write_text("# legs to test\n" + "\n".join(legs) + "\n", encoding="utf-8")
    return CutOff(scenario, keep, pps, leg_file, legs)


@pytest.fixture(scope="module")
def local_run(cut_off, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    options = ContingencyOptions(legs=str(cut_off.leg_file), time_limit_s=30, backend=Backend(workers=1))
    return out, run_contingency(cut_off.scenario, out, options)


def test_the_only_link_to_a_desa_ranks_first_and_cuts_it_off_as_unreachable(cut_off, local_run):
    out, result = local_run
    rows = result.rows
    assert [r["leg_id"] for r in rows][0] == cut_off.leg
    top = rows[0]
    assert top["unreachable"] >= 1 and cut_off.pps in top["unserved_pps"].split()
    assert top["newly_unserved_pps"] == sum(
        top[r] for r in ("unreachable", "too_late", "capacity", "no_vehicle")
    )
    assert top["replanned"] == KABUPATEN and top["baseline_trips"] >= 1
    assert sorted(r["leg_id"] for r in rows) == sorted(cut_off.legs)
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert sorted(rows, key=rank_key) == rows
    for row in rows:
        if not row["replanned"]:  # a leg the plan does not use costs nothing and is not solved again
            assert row["newly_unserved_pps"] == row["late_pps"] == 0 and row["extra_km"] == 0
    frame = pd.read_csv(out / "contingency.csv", dtype={"replanned": str})
    assert list(frame.columns) == IMPACT_COLUMNS
    assert frame["leg_id"].tolist() == [r["leg_id"] for r in rows]
    assert (out / "cases" / "baseline.json").is_file()
    assert len(list((out / "cases").glob("*.json"))) == 1 + result.replanned
    assert result.replanned + result.unused == len(cut_off.legs) and result.reused == 0
    page = (out / "contingency-map.html").read_text(encoding="utf-8")
    assert cut_off.leg in page and "Cuts off PPS (1)" in page
    assert "unpkg.com" not in page and "cdn.jsdelivr" not in page


def test_a_rerun_skips_every_finished_case_and_writes_the_same_ranking(cut_off, local_run):
    out, first = local_run
    before = (out / "contingency.csv").read_bytes()
    app = typer.Typer()
    register(app)
    app.callback()(lambda: None)
    args = ["contingency", str(cut_off.scenario), "--legs", str(cut_off.leg_file), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--time-limit", "30", "--workers", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"0 re-planned, {first.replanned} skipped" in " ".join(result.output.split())
    assert (out / "contingency.csv").read_bytes() == before
    assert cut_off.leg in result.output  # the ranking table


def test_local_pool_and_dask_cluster_give_the_same_ranking(cut_off, local_run, tmp_path):
    from dask.distributed import LocalCluster

    expected = (local_run[0] / "contingency.csv").read_bytes()
    options = ContingencyOptions(legs=str(cut_off.leg_file), time_limit_s=30, backend=Backend(workers=2))
    pool = run_contingency(cut_off.scenario, tmp_path / "pool", options)
    assert pool.replanned == local_run[1].replanned
    assert (tmp_path / "pool" / "contingency.csv").read_bytes() == expected
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        on_dask = replace(options, backend=Backend(scheduler=cluster.scheduler_address))
        dask = run_contingency(cut_off.scenario, tmp_path / "dask", on_dask)
    assert dask.replanned == local_run[1].replanned
    assert (tmp_path / "dask" / "contingency.csv").read_bytes() == expected
    assert [r["leg_id"] for r in dask.rows] == [r["leg_id"] for r in local_run[1].rows]


def test_an_unknown_leg_in_the_leg_file_exits_2_naming_the_leg_and_the_file(
    cut_off, tmp_path, monkeypatch, capsys
):
    bad = tmp_path / "my-legs.csv"
    bad.write_text(
        f"leg_id,note\n{cut_off.leg},ok\nroad:pps:64.74.01.1001-pps:nowhere,typo\n", encoding="utf-8"
    )
    if "batch" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "batch"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["contingency", str(cut_off.scenario), "--legs", str(bad), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "my-legs.csv" in message and "pps:nowhere" in message and "line 3" in message
    assert "Traceback" not in message
    assert not (tmp_path / "out" / "cases").exists()  # nothing was solved


def test_a_missing_leg_file_or_a_bad_limit_is_an_input_error(cut_off, tmp_path, monkeypatch, capsys):
    if "batch" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "batch"))
    for extra in (["--legs", str(tmp_path / "nope.txt")], ["--limit", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["contingency", str(cut_off.scenario), "--out", str(tmp_path / "out"), *extra])
        assert exit_info.value.code == 2
    assert "nope.txt" in capsys.readouterr().err


def test_impact_counts_new_losses_and_delays_against_the_baseline():
    def outcome(km: float, hours: float, arrival: dict, unserved: dict) -> dict:
        return {
            "km_by_mode": {"road": km, "river": 0.0, "sea": 0.0, "access": 1.0},
            "travel_hours": hours,
            "vehicle_hours": hours * 2,
            "pps_arrival": arrival,
            "unserved": unserved,
            "trips_on_leg": {"road:a-b": 2},
        }

    baseline = {
        "64.74": outcome(100, 5, {"pps:1": 100, "pps:2": 200, "pps:3": 300}, {"pps:9": "unreachable"}),
        "64.72": outcome(50, 2, {"pps:7": 100}, {}),
    }
    case = {
        "replanned": ["64.74"],
        "kabupaten": {
            "64.74": outcome(
                130.25,
                6,
                {"pps:1": 150, "pps:2": 261, "pps:5": 900},
                {"pps:3": "unreachable", "pps:9": "unreachable"},
            )
        },
    }
    row = leg_impact("road:a-b", baseline, case, pps_deadline=800)
    assert row["newly_unserved_pps"] == row["unreachable"] == 1 and row["unserved_pps"] == "pps:3"
    assert row["late_pps_ids"] == "pps:2 pps:5"  # 61 min later than before; after the deadline
    assert row["extra_km"] == 30.2 and row["extra_km_road"] == 30.2 and row["extra_km_access"] == 0.0
    assert row["extra_vehicle_hours"] == 2.0 and row["extra_travel_hours"] == 1.0
    assert row["baseline_trips"] == 4 and row["replanned"] == "64.74"
    untouched = leg_impact("road:c-d", baseline, None, pps_deadline=800)
    assert untouched["newly_unserved_pps"] == untouched["late_pps"] == 0 and untouched["extra_km"] == 0.0
    assert str(untouched["extra_km"]) == "0.0"  # never -0.0


def test_the_map_shows_desa_names_as_text(cut_off, local_run, tmp_path):
    inputs = load_inputs(load_scenario(cut_off.scenario))
    nodes = inputs.network.nodes.copy()
    hostile = '<img src=x onerror="alert(1)">'
    nodes.loc[cut_off.pps, "name"] = hostile
    network = replace(inputs.network, nodes=nodes)
    path = write_contingency_map(local_run[1].rows, network, inputs, tmp_path / "map.html")
    page = path.read_text(encoding="utf-8")
    assert hostile not in page
    assert "\\u003cimg src=x" in page  # the name reaches the page as JSON text


def test_incremental_and_from_scratch_cases_agree_and_incremental_keeps_the_trips_off_the_leg(
    cut_off, local_run, tmp_path
):
    out, incremental = local_run
    options = ContingencyOptions(
        legs=str(cut_off.leg_file), time_limit_s=30, backend=Backend(workers=1), incremental=False
    )
    scratch = run_contingency(cut_off.scenario, tmp_path / "scratch", options)
    assert [r["leg_id"] for r in scratch.rows][0] == [r["leg_id"] for r in incremental.rows][0] == cut_off.leg
    for a, b in zip(incremental.rows, scratch.rows, strict=True):
        if a["leg_id"] == b["leg_id"]:
            assert a["unserved_pps"] == b["unserved_pps"]  # the same desa lost either way
    case = json.loads(case_path(out / "cases", cut_off.leg).read_text(encoding="utf-8"))
    assert case["method"] == "incremental"
    outcome = case["kabupaten"][KABUPATEN]
    # only the trips on the leg (and those depending on them) are planned again; the rest are kept
    assert outcome["kept_trips"] > 0 and outcome["replanned_trips"] >= 1
    assert outcome["kept_trips"] + outcome["replanned_trips"] == incremental.baseline[KABUPATEN]["trips"]


def test_a_pair_of_legs_is_blocked_together_and_a_bad_pair_file_is_exit_2(cut_off, tmp_path, capsys):
    other = next(leg for leg in cut_off.legs if leg != cut_off.leg)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"leg_a,leg_b\n{cut_off.leg},{other}  # both banks\n", encoding="utf-8")
    options = ContingencyOptions(pairs=pairs, time_limit_s=30, backend=Backend(workers=1))
    result = run_contingency(cut_off.scenario, tmp_path / "n2", options)
    [row] = result.rows
    assert row["leg_id"] == " & ".join(sorted([cut_off.leg, other]))
    assert cut_off.pps in row["unserved_pps"].split() and row["replanned"] == KABUPATEN
    assert " & " in row["from_node"] and row["mode"].count("&") == 1
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{cut_off.leg}\nroad:nowhere-else {other}\n", encoding="utf-8")
    args = ["contingency", str(cut_off.scenario), "--pairs", str(bad), "--out", str(tmp_path / "bad")]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "line 1: give two different leg ids" in err
    assert "'road:nowhere-else' is not a leg" in err and not (tmp_path / "bad").exists()


def test_the_summary_names_the_critical_legs_in_indonesian_with_their_fallback(cut_off, local_run):
    out, result = local_run
    page = (out / "ringkasan.html").read_text(encoding="utf-8")
    assert 'lang="id"' in page and "ruas paling kritis" in page and "PPS terputus" in page
    assert cut_off.leg in page and "Jalur pengganti" in page
    top = result.rows[0]
    assert top["fallback"] == "" or "km" in top["fallback"]  # new legs driven, by mode
    html_en = summary_html(result.rows, "x<script>", "en")
    assert "most critical legs" in html_en and "<script>" not in html_en and "x&lt;script&gt;" in html_en
