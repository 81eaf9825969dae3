"""The routing problem dataclasses and the OR-Tools model built from them (planner.model)."""

from __future__ import annotations

import numpy as np
import pytest

from planner.errors import InputError
from planner.model import (
    CAPACITY,
    LOAD_PREFIX,
    NO_VEHICLE,
    TIME_DIMENSION,
    TOO_LATE,
    UNREACHABLE,
    UNREACHABLE_REASON,
    RoutingProblem,
    Stop,
    Vehicle,
    VehicleClass,
    build_model,
    eligible_vehicles,
    mandatory_penalty,
    node_layout,
    route_cost,
    route_distance,
    validate_problem,
)


def line_class(name: str, n: int, km_between: int = 10, minutes_per_km: int = 2) -> VehicleClass:
    """Locations 0..n-1 on a line, `km_between` km apart; distance in metres."""
    positions = np.arange(n) * km_between
    km = np.abs(positions[:, None] - positions[None, :])
    return VehicleClass(name, km * 1000, km * minutes_per_km)


def small_problem(**changes) -> RoutingProblem:
    truck = line_class("truck", 6)
    stops = tuple(Stop(loc=i, demand=(2, 1), service=10, name=f"desa {i}") for i in range(1, 6))
    vehicles = (Vehicle("truck 1", 0, 0, 0, (10, 10)), Vehicle("truck 2", 0, 0, 0, (4, 4)))
    fields = dict(
        vehicle_classes=(truck,), vehicles=vehicles, stops=stops, horizon=1000, dimensions=("kg", "l")
    )
    fields.update(changes)
    return RoutingProblem(**fields)


def test_a_consistent_problem_has_no_problems():
    assert validate_problem(small_problem()) == []


def test_validation_names_each_bad_vehicle_stop_and_class():
    problem = small_problem(
        vehicles=(
            Vehicle("truck 1", 0, 0, 9, (10, 10)),  # end_loc out of range
            Vehicle("truck 2", 3, 0, 0, (4,)),  # unknown class
            Vehicle("boat", 0, 0, 0, (4, 4), follows=3),  # follows a vehicle that does not exist
        ),
        stops=(Stop(loc=1, demand=(-1, 0)), Stop(loc=2, demand=(1, 1), window=(50, 10))),
    )
    problems = validate_problem(problem)
    text = "\n".join(problems)
    assert "vehicle 0 (truck 1): end_loc 9 out of range" in text
    assert "vehicle 1 (truck 2): class_index 3" in text
    assert "vehicle 2 (boat): follows 3" in text
    assert "stop 0: demand (-1, 0)" in text
    assert "stop 1: window (50, 10)" in text
    with pytest.raises(InputError) as raised:
        build_model(problem)
    assert raised.value.problems == problems


def test_follows_cycles_are_rejected():
    vehicles = (
        Vehicle("trip a", 0, 0, 0, (10, 10), follows=1),
        Vehicle("trip b", 0, 0, 0, (10, 10), follows=0),
    )
    assert any("cycle" in p for p in validate_problem(small_problem(vehicles=vehicles)))


def test_matrices_must_be_square_and_non_negative():
    with pytest.raises(InputError, match="square"):
        VehicleClass("truck", np.zeros((2, 3), dtype=int), np.zeros((2, 3), dtype=int))
    with pytest.raises(InputError, match="negative"):
        VehicleClass("truck", -np.ones((2, 2), dtype=int), np.zeros((2, 2), dtype=int))


def test_a_vehicle_whose_end_cannot_be_reached_is_rejected():
    truck = line_class("truck", 6)
    distance, duration = truck.distance.copy(), truck.duration.copy()
    distance[0, 5] = duration[0, 5] = UNREACHABLE
    problem = small_problem(
        vehicle_classes=(VehicleClass("truck", distance, duration),),
        vehicles=(Vehicle("truck 1", 0, 0, 5, (10, 10)),),
    )
    assert any("cannot be reached" in p for p in validate_problem(problem))


def test_eligibility_gives_each_unservable_stop_its_reason():
    truck = line_class("truck", 6)
    distance, duration = truck.distance.copy(), truck.duration.copy()
    distance[:, 5] = distance[5, :] = UNREACHABLE  # an island the truck cannot reach
    duration[:, 5] = duration[5, :] = UNREACHABLE
    distance[5, 5] = duration[5, 5] = 0
    boat = line_class("boat", 6, minutes_per_km=4)
    problem = RoutingProblem(
        vehicle_classes=(VehicleClass("truck", distance, duration), boat),
        vehicles=(Vehicle("truck", 0, 0, 0, (10,)), Vehicle("boat", 1, 0, 0, (3,))),
        stops=(
            Stop(loc=5, demand=(1,)),  # boat only
            Stop(loc=5, demand=(1,), allowed_vehicles=(0,)),  # only the truck may go, and it cannot
            Stop(loc=2, demand=(5,), allowed_vehicles=(1,)),  # too heavy for the boat
            Stop(loc=4, demand=(1,), window=(0, 10)),  # 40 km away: 80 minutes at the earliest
            Stop(loc=3, demand=(1,), allowed_vehicles=()),  # nobody may go
            Stop(loc=1, demand=(1,)),  # both
        ),
        horizon=1000,
    )
    eligibility = eligible_vehicles(problem)
    assert eligibility.vehicles[0] == (1,)
    assert eligibility.vehicles[5] == (0, 1)
    assert eligibility.reasons == {1: UNREACHABLE_REASON, 2: CAPACITY, 3: TOO_LATE, 4: NO_VEHICLE}
    assert eligibility.plannable == (0, 5)


def test_max_duration_too_short_for_an_out_and_back_trip_is_too_late():
    problem = small_problem(vehicles=(Vehicle("truck", 0, 0, 0, (10, 10), max_duration=100),))
    # stop at location 3: 30 km each way at 2 min/km = 120 minutes plus 10 minutes of service
    assert eligible_vehicles(problem).reasons == {2: TOO_LATE, 3: TOO_LATE, 4: TOO_LATE}


def test_node_layout_puts_each_stop_on_its_own_node_and_depots_last():
    stops = (Stop(loc=2, demand=(1, 0)), Stop(loc=2, demand=(1, 0)), Stop(loc=4, demand=(1, 0)))
    vehicles = (Vehicle("a", 0, 0, 0, (5, 5)), Vehicle("b", 0, 1, 5, (5, 5)))
    problem = small_problem(stops=stops, vehicles=vehicles)
    layout = node_layout(problem, (0, 1, 2))
    assert layout.stop_of_node == (0, 1, 2)
    assert list(layout.node_loc) == [2, 2, 4, 0, 1, 5]
    assert layout.start_node == (3, 4)
    assert layout.end_node == (3, 5)


def test_mandatory_penalty_outweighs_any_insertion_and_all_optional_penalties():
    stops = (Stop(loc=1, demand=(1, 1), penalty=5_000_000), Stop(loc=5, demand=(1, 1)))
    vehicles = (Vehicle("a", 0, 0, 0, (10, 10), fixed_cost=777, cost_per_distance=3),)
    problem = small_problem(stops=stops, vehicles=vehicles)
    longest_round_trip_cost = 2 * int(problem.vehicle_classes[0].distance.max()) * 3 + 777
    assert mandatory_penalty(problem) > longest_round_trip_cost + 5_000_000


def test_time_dimension_only_when_times_matter():
    plain = build_model(small_problem())
    assert plain.time_dimension is None
    assert [d.name() for d in plain.load_dimensions] == [LOAD_PREFIX + "kg", LOAD_PREFIX + "l"]
    windowed = small_problem(stops=(Stop(loc=1, demand=(1, 1), window=(100, 200)),))
    built = build_model(windowed)
    assert built.time_dimension is not None and built.time_dimension.name() == TIME_DIMENSION
    index = built.routing_index(0)
    cumul = built.time_dimension.CumulVar(index)
    assert (cumul.Min(), cumul.Max()) == (100, 200)


def test_every_plannable_stop_gets_a_disjunction_and_its_allowed_vehicles():
    stops = (
        Stop(loc=1, demand=(1, 1)),
        Stop(loc=2, demand=(1, 1), penalty=123),
        Stop(loc=3, demand=(1, 1), allowed_vehicles=(1,)),
    )
    built = build_model(small_problem(stops=stops))
    routing = built.routing
    assert routing.GetNumberOfDisjunctions() == 3
    penalties = {s: routing.UnperformedPenalty(built.routing_index(s)) for s in range(3)}
    assert penalties[1] == 123
    assert penalties[0] == penalties[2] == built.mandatory_penalty
    routing.CloseModel()
    only_truck_2 = routing.VehicleVar(built.routing_index(2))
    assert not only_truck_2.Contains(0) and only_truck_2.Contains(1)
    assert routing.VehicleVar(built.routing_index(0)).Contains(0)


def test_route_distance_and_cost_follow_the_vehicle_class_and_rates():
    vehicles = (Vehicle("a", 0, 0, 0, (10, 10), fixed_cost=50, cost_per_distance=2),)
    problem = small_problem(vehicles=vehicles)
    # 0 -> stop at 3 -> stop at 1 -> 0: 30 + 20 + 10 km
    assert route_distance(problem, 0, [2, 0]) == 60_000
    assert route_cost(problem, 0, [2, 0]) == 2 * 60_000 + 50
    assert route_cost(problem, 0, []) == 0
