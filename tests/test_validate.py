"""The validator catches hand-broken plans (issue 4)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from planner.plan import Plan
from planner.validate import validate_plan
from planner.vehicles import Assignment


@pytest.fixture(scope="module")
def solved(solve_mahulu):
    plan, expect = solve_mahulu
    assert validate_plan(plan, expect, allow_unserved=True) == []  # the solver's unserved, as listed
    return plan, expect


def broken(plan: Plan) -> Plan:
    return plan.model_copy(deep=True)


def first_route(plan: Plan, predicate):
    return next(r for r in plan.routes if predicate(r))


def test_over_capacity_is_caught(solved):
    plan, expect = solved
    bad = broken(plan)
    route = first_route(bad, lambda r: r.vehicle_type == "pickup" and len(r.stops) > 2)
    item = next(iter(route.stops[0].load))
    route.stops[0].load[item] += 100_000
    route.stops[1].deliver[item] = route.stops[1].deliver.get(item, 0) + 100_000
    problems = validate_plan(bad, expect)
    assert any("over the capacity" in p and route.vehicle_id in p for p in problems)


def test_a_blocked_leg_in_use_is_caught(solved):
    plan, expect = solved
    route = first_route(plan, lambda r: any(leg.startswith("road:") for leg in r.legs))
    leg = next(leg for leg in route.legs if leg.startswith("road:"))
    bad = plan.model_copy(update={"blocked_legs": [leg]})
    assert any(f"leg {leg} is blocked" in p for p in validate_plan(bad, expect))


def test_a_boat_leaving_before_its_goods_arrive_is_caught(solved):
    plan, expect = solved
    bad = broken(plan)
    boat = first_route(bad, lambda r: r.base.startswith("port:") and r.tier == 1)
    early = timedelta(hours=3)
    boat.stops[0].arrival -= early
    boat.stops[0].departure -= early
    problems = validate_plan(bad, expect)
    assert any("not arrived there yet" in p and boat.vehicle_id in p for p in problems)


def test_a_missed_deadline_is_caught(solved):
    plan, expect = solved
    bad = broken(plan)
    route = first_route(bad, lambda r: r.tier == 2)
    late = timedelta(days=3)
    for stop in route.stops:
        stop.arrival += late
        stop.departure += late
    problems = validate_plan(bad, expect)
    assert any("after the deadline" in p and route.vehicle_id in p for p in problems)


def test_a_missing_item_is_caught(solved):
    plan, expect = solved
    bad = broken(plan)
    route = first_route(bad, lambda r: r.tier == 2)
    stop = next(s for s in route.stops if s.deliver)
    item = sorted(stop.deliver)[0]
    stop.deliver[item] -= 1
    route.stops[0].load[item] -= 1
    problems = validate_plan(bad, expect)
    assert any(stop.node_id in p and item in p for p in problems)


def test_a_leg_that_does_not_join_the_stops_is_caught(solved):
    plan, expect = solved
    bad = broken(plan)
    route = first_route(bad, lambda r: len(r.legs) > 3)
    del route.legs[1]
    assert any(
        route.vehicle_id in p and ("does not start at" in p or "in order" in p)
        for p in validate_plan(bad, expect)
    )


def test_a_leg_of_the_wrong_mode_is_caught(solved):
    plan, expect = solved
    bad = broken(plan)
    truck = first_route(bad, lambda r: r.vehicle_type == "truck")
    river = next(
        leg for r in bad.routes if r.vehicle_type != "truck" for leg in r.legs if leg.startswith("river:")
    )
    truck.legs.insert(0, river)
    assert any("not allowed for a truck" in p for p in validate_plan(bad, expect))


def test_an_unlisted_undelivered_desa_is_caught(solved):
    plan, expect = solved
    bad = broken(plan)
    route = first_route(bad, lambda r: r.tier == 2 and sum(1 for s in r.stops if s.deliver) >= 1)
    stop = next(s for s in route.stops if s.deliver)
    for item, qty in stop.deliver.items():
        route.stops[0].load[item] -= qty
    stop.deliver = {}
    problems = validate_plan(bad, expect)
    assert any(stop.node_id in p for p in problems)


def test_a_desa_delivered_against_its_assign_rule_is_caught(solved):
    plan, expect = solved
    route = first_route(plan, lambda r: r.tier == 2 and r.base.startswith("ppk:"))
    desa = next(s.node_id for s in route.stops if s.deliver and s.node_id.startswith("pps:"))
    rule = Assignment("port:ujoh_bilang", "speedboat", "by the Ujoh Bilang speedboats")
    problems = validate_plan(plan, replace(expect, assigned={desa: rule}), allow_unserved=True)
    assert any(
        route.vehicle_id in p and desa in p and "'by the Ujoh Bilang speedboats'" in p for p in problems
    ), problems
    # its goods went by way of its PPK, which the rule takes out of the PPK's goods
    assert any(p.startswith(f"{route.base}: receives") for p in problems)
