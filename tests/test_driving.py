"""The rules drivers, boats and guards live by (issue 13): nights only at nodes, the day's driving limit and
the break after 4 h, laid out by one schedule function (planner.vehicles.drive_legs) that dispatch, the
re-planner and the validator share."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from planner.dispatch import plan_kabupaten
from planner.fleet import VehicleTypeSpec
from planner.paths import TravelSpeeds, leg_travel_hours, shortest_paths
from planner.plan import Calendar, Plan, Route, ScenarioRef, Stop
from planner.validate import Expectations, validate_plan
from planner.vehicles import (
    Driving,
    VehicleSpec,
    VehicleType,
    add_working_minutes,
    after_stop,
    drive_legs,
    planning_hours,
    schedule_trip,
    stretch_limit,
    travel_padding,
)

DAY_START = 6 * 60  # the plan starts at 06:00: minute 0 is 06:00, 720 is 18:00, 1440 is 06:00 next day
DAYLIGHT = (6 * 60, 18 * 60)
WITA = timezone(timedelta(hours=8))
START = datetime(2024, 11, 23, 6, tzinfo=WITA)
WH, PPK1, PPK2 = "wh:64.99", "ppk:64.99.01", "ppk:64.99.02"
LEG_1, LEG_2 = f"road:{WH}-{PPK1}", f"road:{PPK1}-{PPK2}"  # 15 km and 30 km


def _kind(
    max_day: int | None = None,
    after: int | None = None,
    pause: int = 0,
    hours=DAYLIGHT,
    road_kmh: float = 40.0,
) -> VehicleType:
    return VehicleType(
        type_id="truck",
        name="truck",
        tiers=frozenset({1, 2}),
        speeds=TravelSpeeds({"road": road_kmh}, longest_leg_min=stretch_limit(hours)),
        capacity_kg=2000,
        capacity_m3=20,
        operating_hours=hours,
        load_min=0,
        unload_min=20,
        cost_per_km=5000,
        cost_per_day=500_000,
        max_driving_min_per_day=max_day,
        break_after_driving_min=after,
        break_min=pause,
    )


ROAD_LAW = _kind(480, 240, 30)


# ---------------------------------------------------------------- the schedule function


def test_a_leg_that_does_not_fit_before_closing_waits_at_the_node():
    kind = _kind()
    laid, _ = drive_legs(kind, 660, [30, 45], DAY_START)  # sets out at 17:00
    assert (laid[0].start, laid[0].end, laid[0].rest) == (660, 690, "")
    # 17:30 + 45 min would end at 18:15: it waits at the node for 06:00, it does not stop on the road
    assert (laid[1].start, laid[1].end, laid[1].rest) == (1440, 1485, "night")
    # the old work-minute arithmetic paused mid-leg and arrived 30 min earlier
    assert add_working_minutes(660, 75, DAYLIGHT, DAY_START) == 1455


def test_the_days_driving_limit_moves_the_rest_to_the_next_day():
    laid, account = drive_legs(_kind(480), 0, [200, 200, 200], DAY_START)
    assert [(t.start, t.rest) for t in laid] == [(0, ""), (200, ""), (1440, "limit")]
    assert account == Driving(day=1, today=200, since_break=200)


def test_a_break_comes_before_a_leg_that_passes_four_hours_of_driving():
    laid, account = drive_legs(ROAD_LAW, 0, [120, 120, 60], DAY_START)
    assert [(t.start, t.rest) for t in laid] == [(0, ""), (120, ""), (270, "break")]  # 10:00 + 30 min
    assert account.today == 300 and account.since_break == 60


def test_a_type_without_limits_drives_on():
    laid, _ = drive_legs(_kind(), 0, [200, 200, 200], DAY_START)  # 10 h in daylight: no limit, no break
    assert [t.start for t in laid] == [0, 200, 400] and not any(t.rest for t in laid)
    ship = _kind(hours=None)
    laid, _ = drive_legs(ship, 700, [300, 300], DAY_START)  # day and night, a relieved crew
    assert [(t.start, t.end) for t in laid] == [(700, 1000), (1000, 1300)]


def test_a_wait_at_a_node_counts_as_the_break_and_a_night_starts_a_new_day():
    _, account = drive_legs(ROAD_LAW, 0, [230], DAY_START)
    assert after_stop(ROAD_LAW, account, 230, 250, 20).since_break == 230  # 20 min of handling: work
    assert after_stop(ROAD_LAW, account, 230, 280, 20).since_break == 0  # and 30 min more: the break
    laid, _ = drive_legs(ROAD_LAW, 1440, [230], DAY_START, account)  # next morning: fresh
    assert laid[0].start == 1440 and laid[0].rest == ""


def test_schedule_trip_hands_over_at_a_node_across_the_night():
    kind = _kind()
    times, _ = schedule_trip(kind, 600, [[100], [30]], [0, 40, 0], DAY_START)  # 16:00
    assert times[0] == (600, 600)
    assert times[1] == (700, 1460)  # arrives 17:40; 20 min of handling left for the morning
    assert times[2] == (1490, 1490)


def test_a_leg_longer_than_a_driving_limit_is_driven_alone_from_the_morning():
    laid, _ = drive_legs(ROAD_LAW, 60, [100, 500, 30], DAY_START)  # no node on the 500-min leg to rest at
    # the 500-min leg alone on 24 Nov (from 06:00: no rest on the way), the next on 25 Nov
    assert [(t.start, t.rest) for t in laid] == [(60, ""), (1440, "limit"), (2880, "limit")]
    assert [t.start for t in drive_legs(ROAD_LAW, 0, [500], DAY_START)[0]] == [0]


def test_a_leg_longer_than_the_operating_day_is_not_taken(maps_network):
    slow = _kind(480, 240, 30, road_kmh=2.0)  # the 30-km road takes 15 h, more than the 12-h day
    leg = maps_network.legs.loc[LEG_2]
    assert leg_travel_hours(leg, slow.speeds) is None
    assert leg_travel_hours(maps_network.legs.loc[LEG_1], slow.speeds) == pytest.approx(7.5)
    paths = shortest_paths(maps_network, slow.speeds, sources=[WH])
    assert not math.isfinite(paths.hours_between(WH, PPK2))


def test_the_engine_plans_conservatively():
    assert planning_hours(_kind()) == (360, 1020)  # closes an hour early for the leg that does not fit
    assert travel_padding(_kind()) == 1.0
    assert travel_padding(ROAD_LAW) == pytest.approx(660 / 510)  # 8 h of driving and a break in 11 h
    assert planning_hours(_kind(hours=None)) is None


def test_the_fleet_file_needs_operating_hours_for_a_driving_limit():
    base = {
        "name": "x",
        "modes": ["road"],
        "capacity_kg": 100,
        "capacity_m3": 1,
        "speed_kmh": {"road": 30},
        "load_min": 10,
        "unload_min": 10,
        "cost_per_km": 1,
        "cost_per_day": 1,
        "tier": "2",
    }
    with pytest.raises(ValidationError, match="need operating_hours"):
        VehicleTypeSpec.model_validate({**base, "operating_hours": None, "max_driving_min_per_day": 480})
    with pytest.raises(ValidationError, match="needs break_min"):
        VehicleTypeSpec.model_validate(
            {**base, "operating_hours": {"start": "06:00", "end": "18:00"}, "break_after_driving_min": 240}
        )
    VehicleTypeSpec.model_validate({**base, "operating_hours": None, "max_driving_min_per_day": None})


# ---------------------------------------------------------------- the validator


def _at(minute: float) -> datetime:
    return START + timedelta(minutes=minute)


def _plan_and_expect(network, kind: VehicleType, depart: int, arrive: int) -> tuple[Plan, Expectations]:
    """One trip wh -> ppk2 (by ppk1) and back, leaving at `depart` and reaching ppk2 at `arrive`."""
    vehicle = "truck@wh:64.99#1"
    route = Route(
        vehicle_id=vehicle,
        vehicle_type="truck",
        kabupaten_code="64.99",
        base=WH,
        tier=1,
        stops=[
            Stop(node_id=WH, arrival=_at(depart), departure=_at(depart)),
            Stop(node_id=PPK2, arrival=_at(arrive), departure=_at(arrive)),
            Stop(node_id=WH, arrival=_at(4 * 1440), departure=_at(4 * 1440)),
        ],
        legs=[LEG_1, LEG_2, LEG_2, LEG_1],
    )
    plan = Plan(
        scenario=ScenarioRef(name="rules", hash="sha256:0"),
        network="networks/test/network.gpkg",
        calendar=Calendar(start=START, ppk_deadline=_at(5 * 1440), pps_deadline=_at(5 * 1440)),
        routes=[route],
    )
    expect = Expectations(
        network=network,
        vehicles={vehicle: VehicleSpec(vehicle, WH, kind)},
        units={},
        pps_goods={},
        ppk_own={},
        pps_ppk={},
        start=START,
        ppk_deadline=_at(5 * 1440),
        pps_deadline=_at(5 * 1440),
    )
    return plan, expect


def _rule_problems(plan: Plan, expect: Expectations) -> list[str]:
    return [p for p in validate_plan(plan, expect) if "reaches ppk:64.99.02" in p]


def test_the_validator_catches_a_night_spent_between_two_nodes(maps_network):
    kind = _kind(road_kmh=10.0)  # 90 min to ppk1, then 180 min to ppk2; daylight, no driving limits
    # leaves at 16:00: the first leg ends 17:30, the second does not fit, so it may only leave at 06:00
    by_the_rules = _plan_and_expect(maps_network, kind, 600, 1440 + 180)
    assert _rule_problems(*by_the_rules) == []
    paused_on_the_road = _plan_and_expect(maps_network, kind, 600, 1440 + 150)  # 17:30-18:00 and 06:00-08:30
    problems = _rule_problems(*paused_on_the_road)
    assert len(problems) == 1
    assert (
        "truck@wh:64.99#1 trip 1" in problems[0] and f"leg {LEG_2} on 23 Nov waits at its node" in problems[0]
    )
    assert "spends the night at a node, never between two" in problems[0]


def test_the_validator_catches_nine_hours_of_driving_in_a_day(maps_network):
    kind = _kind(max_day=480, road_kmh=5.0)  # 3 h to ppk1, then 6 h to ppk2: 9 h on 23 Nov
    problems = _rule_problems(*_plan_and_expect(maps_network, kind, 0, 540))
    assert len(problems) == 1
    assert "truck@wh:64.99#1 trip 1" in problems[0] and f"leg {LEG_2} on 23 Nov" in problems[0]
    assert "past 480 min" in problems[0]
    assert _rule_problems(*_plan_and_expect(maps_network, kind, 0, 1440 + 360)) == []  # the rest next day


def test_the_validator_catches_a_missing_break(maps_network):
    kind = _kind(480, 240, 30, road_kmh=45 / 5)  # 100 min to ppk1, then 200 min: 5 h without a break
    problems = _rule_problems(*_plan_and_expect(maps_network, kind, 0, 300))
    assert len(problems) == 1 and "30-min break at the node first" in problems[0]
    assert f"leg {LEG_2}" in problems[0]
    assert _rule_problems(*_plan_and_expect(maps_network, kind, 0, 330)) == []


def test_the_validator_catches_a_leg_too_long_to_drive_by_the_rules(maps_network):
    kind = _kind(road_kmh=2.0)  # the 30-km road takes 15 h
    problems = validate_plan(*_plan_and_expect(maps_network, kind, 0, 1440 + 900))
    assert any(
        f"leg {LEG_2} takes 900 min, longer than a truck may travel without a stop" in p for p in problems
    )


# ---------------------------------------------------------------- plans made by the planner


def test_dispatch_reads_trips_back_by_the_rules(maps_network):
    from test_dispatch import _fleet, _task  # tests/test_dispatch.py: the small network's fleet and task

    # a slow truck under the road law: 112 min to ppk1, 225 min on to ppk2
    truck = replace(ROAD_LAW, speeds=TravelSpeeds({"road": 8.0}, longest_leg_min=240), load_min=30)
    fleet = tuple(v if v.type_id != "truck" else VehicleSpec(v.vehicle_id, v.base, truck) for v in _fleet())
    result = plan_kabupaten(_task(maps_network, vehicles=fleet))
    assert result.failure == ""
    trips = [t for t in result.trips if t.vehicle_id == "truck@wh#1"]
    assert trips
    paths = shortest_paths(maps_network, truck.speeds, sources=[WH, PPK1, PPK2])
    account, last = None, 0
    for trip in trips:
        start = trip.visits[0].arrival
        account = after_stop(truck, account, last, start, 0) if account else None
        nodes = [v.node_id for v in trip.visits]
        handling = [truck.load_min, *(truck.unload_min for _ in trip.visits[1:-1]), 0]
        minutes = [paths.path_minutes(a, b) for a, b in zip(nodes, nodes[1:], strict=False)]
        times, account = schedule_trip(truck, start, minutes, handling, DAY_START, account)
        assert times == [(v.arrival, v.departure) for v in trip.visits]
        last = times[-1][0]
    assert any(v.node_id == PPK2 for t in trips for v in t.visits), "the truck never drove the long road"


def test_a_solved_plan_keeps_the_rules(solve_mahulu):
    plan, expect = solve_mahulu
    assert validate_plan(plan, expect, allow_unserved=True) == []
    speedboat = next(s.kind for s in expect.vehicles.values() if s.type_id == "speedboat")
    assert speedboat.max_driving_min_per_day == 480 and speedboat.break_after_driving_min == 240
    navy = [s.kind for s in expect.vehicles.values() if s.type_id == "navy_vessel"]
    assert all(k.max_driving_min_per_day is None for k in navy)
