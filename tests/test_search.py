"""Solving routing problems (planner.search): every solution is checked here, independently of the solver,
against the problem's rules: capacity, windows, breaks, allowed vehicles, chained trips, penalties."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from planner.model import (
    DROPPED,
    UNREACHABLE,
    UNREACHABLE_REASON,
    RoutingProblem,
    Stop,
    Vehicle,
    VehicleClass,
)
from planner.search import CostUnits, SearchSettings, WorkClock, solve, to_pyvrp

DAY = 24 * 60
NIGHTS = tuple((DAY * k + 18 * 60, DAY * (k + 1) + 6 * 60) for k in range(3))  # 18:00-06:00


def quick(**changes) -> SearchSettings:
    """Deterministic, small budgets: fast and reproducible."""
    fields = dict(time_limit_s=20, deterministic=True, seed_iterations=400, solution_limit=60)
    fields.update(changes)
    return SearchSettings(**fields)


def scattered(n: int, seed: int, minutes_per_km: float = 2.0) -> tuple[np.ndarray, VehicleClass]:
    """Location 0 in the middle of a 100 km square, n random locations around it."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 100, size=(n + 1, 2))
    points[0] = (50, 50)
    km = np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1))
    metres = np.rint(km * 1000).astype(np.int64)
    minutes = np.rint(km * minutes_per_km).astype(np.int64)
    return points, VehicleClass("truck", metres, minutes)


def check(problem: RoutingProblem, solution) -> None:
    """Assert that the solution keeps every rule of the problem (recomputed from the problem's data)."""
    served = [s for r in solution.routes for s in r.stops]
    assert len(served) == len(set(served)), "a stop is served twice"
    assert sorted(served + [u.stop for u in solution.unserved]) == list(range(len(problem.stops)))
    ends = {}
    for route in solution.used_routes:
        vehicle = problem.vehicles[route.vehicle]
        vclass = problem.vehicle_classes[vehicle.class_index]
        stops = [problem.stops[s] for s in route.stops]
        for d in range(len(problem.dimensions)):
            assert sum(s.demand[d] for s in stops) <= vehicle.capacity[d], f"vehicle {vehicle.id} overloaded"
        for s_index in route.stops:
            allowed = problem.stops[s_index].allowed_vehicles
            assert allowed is None or route.vehicle in allowed, f"stop {s_index} on a vehicle not allowed"
        locs = [vehicle.start_loc, *(s.loc for s in stops), vehicle.end_loc]
        assert all(vclass.distance[a, b] < UNREACHABLE for a, b in zip(locs[:-1], locs[1:], strict=True))
        # time: [departure, arrival] of each leg must hold the travel time outside the breaks
        points = [(route.start_time, route.start_time)]
        points += [(v.arrival, v.departure) for v in route.visits]
        points += [(route.end_time, route.end_time)]
        assert route.start_time >= vehicle.earliest_start
        assert route.end_time <= problem.latest_end(vehicle)
        if vehicle.max_duration is not None:
            assert route.end_time - route.start_time <= vehicle.max_duration
        for k, (stop, visit) in enumerate(zip(stops, route.visits, strict=True)):
            early, late = problem.window(stop)
            assert early <= visit.arrival <= late, (
                f"stop {visit.stop} served at {visit.arrival} outside {early, late}"
            )
            assert visit.departure == visit.arrival + stop.service
            for start, end in vehicle.breaks:
                assert visit.departure <= start or visit.arrival >= end, (
                    f"service at {visit.stop} during a break"
                )
            del k
        for (_, leave), (arrive, _), a, b in zip(points[:-1], points[1:], locs[:-1], locs[1:], strict=True):
            resting = sum(max(0, min(arrive, end) - max(leave, start)) for start, end in vehicle.breaks)
            assert arrive - leave - resting >= vclass.duration[a, b], f"{vehicle.id} drives too fast {a}->{b}"
        ends[route.vehicle] = route.end_time
    for route in solution.used_routes:
        vehicle = problem.vehicles[route.vehicle]
        if vehicle.follows is not None:
            assert route.start_time >= ends.get(vehicle.follows, 0) + vehicle.reload_minutes
    assert solution.total_cost == sum(r.cost for r in solution.routes)


def daylight_problem(n: int = 30, seed: int = 3) -> RoutingProblem:
    """Trucks driving by day only over three days, two load dimensions, some desa with windows."""
    _, truck = scattered(n, seed, minutes_per_km=6.0)
    rng = np.random.default_rng(seed)
    stops = tuple(
        Stop(
            loc=i,
            demand=(int(rng.integers(5, 40)), int(rng.integers(1, 9))),
            service=30,
            window=(DAY + 6 * 60, 2 * DAY + 18 * 60) if i % 7 == 0 else None,
            name=f"desa {i}",
        )
        for i in range(1, n + 1)
    )
    vehicles = tuple(
        Vehicle(
            f"truck {k}",
            0,
            0,
            0,
            (300, 60),
            earliest_start=6 * 60,
            latest_end=2 * DAY + 18 * 60,
            breaks=NIGHTS,
        )
        for k in range(4)
    )
    return RoutingProblem((truck,), vehicles, stops, 3 * DAY, ("kg", "litre"), "daylight")


@pytest.mark.parametrize("first_solution", ["pyvrp-seed", "savings", "parallel-cheapest-insertion"])
def test_capacity_windows_and_night_breaks_are_kept(first_solution):
    problem = daylight_problem()
    solution = solve(problem, quick(first_solution=first_solution))
    assert solution.status == "feasible"
    assert solution.unserved == ()
    check(problem, solution)
    # the nights really bind: some route is out for more than one day
    assert any(r.end_time - r.start_time > 12 * 60 for r in solution.used_routes)


def test_a_stop_the_truck_cannot_reach_goes_by_boat_and_allowed_vehicles_hold():
    _, truck = scattered(12, seed=5)
    distance, duration = truck.distance.copy(), truck.duration.copy()
    islands = [11, 12]
    for loc in islands:
        distance[loc, :] = distance[:, loc] = UNREACHABLE
        duration[loc, :] = duration[:, loc] = UNREACHABLE
        distance[loc, loc] = duration[loc, loc] = 0
    road = VehicleClass("truck", distance, duration)
    boat = VehicleClass("boat", truck.distance, truck.duration * 3)
    stops = [Stop(loc=i, demand=(1,), service=5) for i in range(1, 13)]
    stops[0] = replace(stops[0], allowed_vehicles=(1,))  # e.g. a riverside desa served by boat only
    problem = RoutingProblem(
        (road, boat),
        (Vehicle("truck", 0, 0, 0, (20,)), Vehicle("boat", 1, 0, 0, (20,), cost_per_distance=4)),
        tuple(stops),
        10 * DAY,
        ("kg",),
    )
    solution = solve(problem, quick())
    check(problem, solution)
    boat_stops = set(solution.routes[1].stops)
    assert {10, 11, 0} <= boat_stops  # stops 10, 11 are the islands (locations 11, 12)
    assert solution.unserved == ()


def test_optional_stops_are_dropped_only_when_their_penalty_is_below_the_cost_of_serving():
    points, truck = scattered(10, seed=7)
    far = int(np.argmax(truck.distance[0]))
    round_trip = int(truck.distance[0, far] + truck.distance[far, 0])
    base = [Stop(loc=i, demand=(1,)) for i in range(1, 11) if i != far]
    cheap = RoutingProblem(
        (truck,),
        (Vehicle("truck", 0, 0, 0, (20,)),),
        (*base, Stop(loc=far, demand=(1,), penalty=round_trip // 100, name="far")),
        DAY,
    )
    dropped = solve(cheap, quick())
    check(cheap, dropped)
    far_index = len(base)
    assert [(u.stop, u.reason) for u in dropped.unserved] == [(far_index, DROPPED)]
    assert dropped.status == "feasible"  # only an optional stop is missing
    assert dropped.objective == dropped.total_cost + round_trip // 100

    dear = replace(cheap, stops=(*base, Stop(loc=far, demand=(1,), penalty=round_trip * 10)))
    served = solve(dear, quick())
    check(dear, served)
    assert served.unserved == ()
    assert served.objective == served.total_cost


def test_a_mandatory_stop_nobody_can_reach_is_reported_not_dropped_silently():
    _, truck = scattered(6, seed=11)
    distance, duration = truck.distance.copy(), truck.duration.copy()
    distance[6, :5] = distance[:5, 6] = UNREACHABLE
    duration[6, :5] = duration[:5, 6] = UNREACHABLE
    problem = RoutingProblem(
        (VehicleClass("truck", distance, duration),),
        (Vehicle("truck", 0, 0, 0, (20,)),),
        tuple(Stop(loc=i, demand=(1,)) for i in range(1, 7)),
        DAY,
    )
    solution = solve(problem, quick())
    check(problem, solution)
    assert solution.status == "incomplete"
    assert [(u.stop, u.reason) for u in solution.unserved] == [(5, UNREACHABLE_REASON)]


def test_chained_trips_start_after_the_previous_trip_and_its_reload():
    _, truck = scattered(12, seed=13)
    stops = tuple(Stop(loc=i, demand=(3,), service=10) for i in range(1, 13))  # 36 units, 20 per trip
    vehicles = (
        Vehicle("truck trip 1", 0, 0, 0, (20,), earliest_start=6 * 60, latest_end=DAY),
        Vehicle(
            "truck trip 2",
            0,
            0,
            0,
            (20,),
            earliest_start=6 * 60,
            latest_end=DAY,
            follows=0,
            reload_minutes=45,
        ),
    )
    problem = RoutingProblem((truck,), vehicles, stops, DAY)
    for first_solution in ("pyvrp-seed", "savings"):
        solution = solve(problem, quick(first_solution=first_solution))
        check(problem, solution)
        assert solution.unserved == ()
        first, second = solution.routes
        assert first.used and second.used
        assert second.start_time >= first.end_time + 45


def test_the_cheaper_vehicle_is_preferred_when_one_suffices():
    _, truck = scattered(8, seed=17)
    vehicles = (Vehicle("hired", 0, 0, 0, (50,), cost_per_distance=5), Vehicle("own", 0, 0, 0, (50,)))
    problem = RoutingProblem((truck,), vehicles, tuple(Stop(loc=i, demand=(1,)) for i in range(1, 9)), DAY)
    solution = solve(problem, quick())
    check(problem, solution)
    assert not solution.routes[0].used and solution.routes[1].used


def test_deterministic_solves_are_identical():
    problem = daylight_problem(n=25, seed=21)
    first = solve(problem, quick(seed=4))
    second = solve(problem, quick(seed=4))
    assert first.reproducible and second.reproducible
    assert first.routes == second.routes
    assert first.objective == second.objective


def test_warm_start_from_previous_routes():
    problem = daylight_problem(n=20, seed=23)
    previous = solve(problem, quick())
    settings = quick(first_solution="savings")
    warm = solve(problem, settings, initial_routes=[r.stops for r in previous.routes])
    check(problem, warm)
    assert warm.seed_source == "initial-routes"
    assert warm.objective <= previous.objective


def test_an_infeasible_warm_start_is_repaired_by_reinserting_stops():
    problem = daylight_problem(n=20, seed=29)
    everything_on_one_truck = [list(range(len(problem.stops)))] + [[] for _ in problem.vehicles[1:]]
    solution = solve(problem, quick(first_solution="savings"), initial_routes=everything_on_one_truck)
    check(problem, solution)
    assert solution.unserved == ()
    assert solution.seed_source.startswith("initial-routes (repaired")


def test_pyvrp_translation_groups_vehicles_profiles_and_trip_chains():
    from planner.model import build_model

    _, truck = scattered(6, seed=31)
    boat = VehicleClass("boat", truck.distance, truck.duration * 2)
    vehicles = (
        Vehicle("truck a", 0, 0, 0, (10,)),
        Vehicle("truck b", 0, 0, 0, (10,)),
        Vehicle("truck b trip 2", 0, 0, 0, (10,), follows=1, reload_minutes=30),
        Vehicle("boat", 1, 0, 0, (5,)),
    )
    stops = tuple(Stop(loc=i, demand=(1,), allowed_vehicles=(3,) if i == 6 else None) for i in range(1, 7))
    translation = to_pyvrp(build_model(RoutingProblem((truck, boat), vehicles, stops, DAY)))
    data = translation.data
    assert data.num_clients == 6 and data.num_depots == 1
    # trucks may not serve stop 5 (location 6): their profile differs from the boat's
    assert data.num_profiles == 2
    chains = sorted(chain for chains in translation.type_chains for chain in chains)
    assert chains == [[0], [1, 2], [3]]
    reloading = [t for t in data.vehicle_types() if t.max_reloads == 1]
    assert len(reloading) == 1 and data.depot(0).service_duration == 30


def test_work_clock_skips_the_breaks_of_any_vehicle():
    clock = WorkClock.of([Vehicle("a", 0, 0, 0, (1,), breaks=NIGHTS)] * 2)
    assert clock(6 * 60) == 6 * 60
    assert clock(18 * 60) == 18 * 60
    assert clock(DAY + 6 * 60) == 18 * 60  # the night does not count
    assert clock(DAY + 7 * 60) == 19 * 60
    longer_night = ((17 * 60, DAY + 7 * 60),)
    mixed = WorkClock.of(
        [Vehicle("a", 0, 0, 0, (1,), breaks=NIGHTS), Vehicle("b", 0, 0, 0, (1,), breaks=longer_night)]
    )
    assert mixed(DAY + 8 * 60) == 17 * 60 + 60
    assert WorkClock.of([Vehicle("ship", 0, 0, 0, (1,))])(DAY) == DAY


def test_settings_reject_unknown_strategies():
    with pytest.raises(ValueError, match="first_solution"):
        SearchSettings(first_solution="magic")
    with pytest.raises(ValueError, match="metaheuristic"):
        SearchSettings(metaheuristic="magic")


def test_without_vehicles_every_stop_is_reported_unserved():
    _, truck = scattered(4, seed=37)
    problem = RoutingProblem(
        (truck,), (), tuple(Stop(loc=i, demand=(1,), penalty=9) for i in range(1, 5)), DAY
    )
    solution = solve(problem, quick())
    assert [u.reason for u in solution.unserved] == ["no_vehicle"] * 4
    assert solution.status == "feasible"  # every stop was optional
    assert solution.objective == 4 * 9 and solution.routes == ()


def test_rupiah_scale_costs_still_give_pyvrp_a_feasible_seed():
    # a minute of driving costing millions (rupiah per metre) must not let lateness look cheap to PyVRP
    problem = daylight_problem(n=30, seed=41)
    dear = replace(
        problem,
        vehicles=tuple(
            replace(v, cost_per_distance=30_000, fixed_cost=2_500_000_000) for v in problem.vehicles
        ),
        stops=tuple(replace(s, window=(0, DAY + 18 * 60), penalty=10**13) for s in problem.stops),
    )
    units = CostUnits.for_problem(dear)
    assert units.rate_divisor > 1 and units.distance_divisor > 1
    assert units.rate(30_000) >= CostUnits.MIN_RATE
    solution = solve(dear, quick(seed_iterations=1500))
    check(dear, solution)
    assert solution.stats["seed_feasible"] and solution.stats["seed_warnings"] == []
    assert CostUnits.for_problem(problem) == CostUnits()  # metres and minutes at unit cost: unchanged


def test_previous_routes_warm_start_the_pyvrp_seed_too():
    problem = daylight_problem(n=20, seed=43)
    previous = solve(problem, quick())
    warm = solve(problem, quick(), initial_routes=[r.stops for r in previous.routes])
    check(problem, warm)
    assert warm.seed_source.startswith("pyvrp") and warm.unserved == ()
    assert warm.objective <= previous.objective
    with pytest.raises(ValueError, match="initial_routes"):
        solve(problem, quick(), initial_routes=[[0]])


def test_the_search_stops_when_it_stops_improving():
    problem = daylight_problem(n=12, seed=3)
    clocked = solve(problem, SearchSettings(time_limit_s=4))
    stalled = solve(problem, SearchSettings(time_limit_s=60, stall_iterations=200, stall_solutions=20))
    check(problem, stalled)
    assert stalled.unserved == ()
    assert clocked.wall_time_s >= 3.5, "without a stall limit the search runs to the clock"
    assert stalled.wall_time_s < 30, "with one it stopped on its own, long before the 60 s clock"
    assert stalled.objective <= clocked.objective * 1.02
    with pytest.raises(ValueError, match="stall"):
        SearchSettings(stall_solutions=-1)


def test_a_warm_start_stop_on_a_vehicle_it_may_not_go_on_is_reinserted_quietly(capfd):
    problem = daylight_problem(n=10, seed=31)
    stops = list(problem.stops)
    stops[0] = replace(stops[0], allowed_vehicles=(1,))
    problem = replace(problem, stops=tuple(stops))
    on_the_wrong_truck = [list(range(len(stops)))] + [[] for _ in problem.vehicles[1:]]
    solution = solve(problem, quick(first_solution="savings"), initial_routes=on_the_wrong_truck)
    check(problem, solution)
    assert solution.unserved == ()
    assert "is not allowed" not in capfd.readouterr().err
