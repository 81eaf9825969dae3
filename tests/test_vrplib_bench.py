"""VRPLIB benchmark: reading each instance family, solving, costing, and the `planner bench vrplib` command."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyvrp
import vrplib
from typer.testing import CliRunner

from planner.cli import build_app
from planner.errors import InputError
from planner.search import SearchSettings
from planner.vrplib_bench import check_routes, read_instance, routes_cost, run_engine

DATA = Path(__file__).parent / "data" / "vrplib"
CVRP = DATA / "CVRP" / "X-n101-k25.vrp"
VRPTW = DATA / "VRPTW" / "C1_10_1.vrp"
MDVRPTW = DATA / "MDVRPTW" / "PR11A.vrp"
PLANNER = Path(sys.executable).parent / "planner"


def bks_routes_with_depots(instance):
    vehicles = instance.problem.vehicles
    return [(vehicles[k].start_loc, route) for k, route in enumerate(instance.bks_routes) if route]


def test_cvrp_instance_becomes_one_class_identical_vehicles_and_rounded_distances():
    instance = read_instance(CVRP)
    raw = vrplib.read_instance(CVRP)
    problem = instance.problem
    assert instance.family == "CVRP" and instance.num_depots == 1
    assert len(problem.stops) == 100
    assert len(problem.vehicle_classes) == 1
    assert {v.capacity for v in problem.vehicles} == {(206,)}
    assert len(problem.vehicles) >= 25  # at least the -k25 of the name
    assert [s.demand[0] for s in problem.stops] == list(raw["demand"][1:])
    x, y = raw["node_coord"][3], raw["node_coord"][7]
    assert problem.vehicle_classes[0].distance[3, 7] == round(math.hypot(*(x - y)))
    assert not problem.has_time_constraints
    assert instance.bks == 27591


def test_vrptw_instance_uses_dimacs_tenths_for_times_and_distances():
    instance = read_instance(VRPTW)
    raw = vrplib.read_instance(VRPTW)
    problem = instance.problem
    assert instance.family == "VRPTW" and len(problem.stops) == 1000 and len(problem.vehicles) == 250
    stop = problem.stops[41]
    assert stop.window == tuple(int(10 * t) for t in raw["time_window"][42])
    assert stop.service == 900  # 90 time units, in tenths
    assert problem.horizon == int(10 * raw["time_window"][0][1])
    assert problem.has_time_constraints
    assert instance.bks == pytest.approx(42444.8)


def test_mdvrptw_instance_has_vehicles_at_each_depot_and_a_maximum_route_duration():
    instance = read_instance(MDVRPTW)
    raw = vrplib.read_instance(MDVRPTW)
    problem = instance.problem
    assert instance.family == "MDVRPTW" and instance.num_depots == 4
    assert len(problem.stops) == int(raw["dimension"]) - 4
    assert [v.start_loc for v in problem.vehicles] == [int(d) - 1 for d in raw["vehicles_depot"]]
    assert {v.start_loc for v in problem.vehicles} == {0, 1, 2, 3}
    assert {v.max_duration for v in problem.vehicles} == {450_000}
    assert instance.bks == pytest.approx(6655.548)  # the .sol states it in thousandths


@pytest.mark.parametrize("path", [CVRP, VRPTW, MDVRPTW], ids=lambda p: p.stem)
def test_best_known_routes_are_feasible_and_cost_the_stated_bks(path):
    instance = read_instance(path)
    routes = bks_routes_with_depots(instance)
    assert check_routes(instance, routes) == []
    assert routes_cost(instance, routes) == pytest.approx(instance.bks)


@pytest.mark.parametrize("path", [CVRP, VRPTW, MDVRPTW], ids=lambda p: p.stem)
def test_engine_sees_the_same_integers_as_pyvrp(path):
    instance = read_instance(path)
    data = pyvrp.read(path, round_func=instance.rounding.name)
    np.testing.assert_array_equal(instance.problem.vehicle_classes[0].distance, data.distance_matrix(0))
    client = data.client(5)
    stop = instance.problem.stops[5]
    # PyVRP's round functions scale demands and capacities too, which leaves feasibility unchanged
    assert instance.rounding.apply(np.array(stop.demand)).tolist() == list(client.delivery)
    capacity = instance.problem.vehicles[0].capacity
    assert instance.rounding.apply(np.array(capacity)).tolist() == list(data.vehicle_type(0).capacity)
    assert stop.service == client.service_duration
    if stop.window is not None:
        assert stop.window == (client.tw_early, client.tw_late)


def test_check_routes_finds_missing_customers_and_overloads():
    instance = read_instance(CVRP)
    routes = bks_routes_with_depots(instance)
    assert any("missing" in p for p in check_routes(instance, routes[1:]))
    merged = [(0, routes[0][1] + routes[1][1]), *routes[2:]]
    assert any("exceeds capacity" in p for p in check_routes(instance, merged))


def test_a_100_customer_instance_solved_deterministically_is_feasible_and_costed_right():
    instance = read_instance(CVRP)
    settings = SearchSettings(time_limit_s=60, deterministic=True, seed_iterations=1500, solution_limit=60)
    result = run_engine(instance, settings)
    assert result.feasible, result.note

    # recompute the cost from the coordinates, independently of the engine and of routes_cost
    from planner.search import solve

    solution = solve(instance.problem, settings)
    raw = vrplib.read_instance(CVRP, compute_edge_weights=False)
    coords = raw["node_coord"]
    visited, cost = [], 0
    for route in solution.used_routes:
        locations = [0, *(stop + 1 for stop in route.stops), 0]
        visited += locations[1:-1]
        load = sum(raw["demand"][loc] for loc in locations)
        assert load <= raw["capacity"]
        cost += sum(
            round(math.dist(coords[a], coords[b])) for a, b in zip(locations[:-1], locations[1:], strict=True)
        )
    assert sorted(visited) == list(range(1, 101))
    assert cost == result.cost  # the same deterministic solution twice
    assert 0 <= (cost - instance.bks) / instance.bks < 0.08


def test_unsupported_or_missing_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_instance(tmp_path / "nothing.vrp")
    odd = tmp_path / "odd.vrp"
    odd.write_text(CVRP.read_text().replace("TYPE : \tCVRP", "TYPE : \tPCTSP"))
    with pytest.raises(InputError, match="PCTSP is not supported"):
        read_instance(odd)


def test_bench_command_reports_both_solvers_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    runner = CliRunner()
    result = runner.invoke(
        build_app(),
        ["bench", "vrplib", str(CVRP), "--time-limit", "1", "--compare", "pyvrp", "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "X-n101-k25" in result.output and "mean gap CVRP pyvrp" in result.output
    record = json.loads(out.read_text())
    assert [r["solver"] for r in record["results"]] == ["planner", "pyvrp"]
    for r in record["results"]:
        assert r["feasible"] and r["bks"] == 27591
        assert r["gap_pct"] == pytest.approx(100 * (r["cost"] - 27591) / 27591)
    assert record["environment"]["versions"]["pyvrp"]


def test_bench_command_fails_plainly_on_bad_input(tmp_path):
    missing = subprocess.run(
        [str(PLANNER), "bench", "vrplib", str(tmp_path / "none.vrp")], capture_output=True, text=True
    )
    assert missing.returncode == 2
    assert (
        "none.vrp" in missing.stderr and "not found" in missing.stderr and "Traceback" not in missing.stderr
    )
    unknown = subprocess.run(
        [str(PLANNER), "bench", "vrplib", str(CVRP), "--compare", "gurobi"], capture_output=True, text=True
    )
    assert unknown.returncode == 2 and "gurobi" in unknown.stderr
