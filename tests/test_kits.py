"""TPS kits (issue 12): the unit a PPS receives is never split, handling grows with the kits handed over."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner.catalog import Item
from planner.dispatch import Kit, add_goods, integer_load, split_kits, vehicle_capacity
from planner.plan import Plan, Stop, to_json
from planner.report import item_infos, kit_numbers_text, manifest_frame
from planner.validate import validate_plan
from planner.vehicles import handling_minutes, kits_handed_over

UNITS = {
    "kotak": Item("kotak", "kotak", 2.26, 0.096),
    "bilik": Item("bilik", "bilik", 1.8, 0.016),
    "surat": Item("surat", "surat", 0.005, 0.0),
    "terpal": Item("terpal", "terpal", 2.5, 0.01),
}


def kit(pps: str, number: int, ballots: int) -> Kit:
    return Kit(pps, number, {"kotak": 2, "bilik": 4, "surat": ballots})


@given(
    st.lists(st.integers(min_value=100, max_value=1230), min_size=1, max_size=40),
    st.integers(min_value=0, max_value=30),
    st.sampled_from([(800, 1.4), (600, 3.0), (4000, 16.0), (60, 0.5)]),
)
def test_a_kit_is_never_split_across_loads(ballots, tarps, capacity):
    kits = [kit("pps:64.99.01.2001", n, b) for n, b in enumerate(ballots, start=1)]
    goods = add_goods(*(k.items for k in kits), {"terpal": tarps})
    loads = split_kits(goods, kits, UNITS, *capacity)
    cap = vehicle_capacity(*capacity)
    placed = [k.number for _, load_kits in loads for k in load_kits]
    assert sorted(placed) == [k.number for k in kits]  # every kit in exactly one load
    assert add_goods(*(items for items, _ in loads)) == goods  # nothing lost, nothing added
    for items, load_kits in loads:
        grams, cm3 = integer_load(items, UNITS)
        assert grams <= cap[0] and cm3 <= cap[1]
        inside = add_goods(*(k.items for k in load_kits))
        rest = {i: items.get(i, 0) - inside.get(i, 0) for i in items}
        assert set(i for i, q in rest.items() if q) <= {"terpal"}  # only loose items beside whole kits


def test_a_kit_too_big_for_the_vehicle_is_an_error():
    with pytest.raises(ValueError, match="TPS kit 1 of pps:x does not fit"):
        split_kits(kit("pps:x", 1, 500).items, [kit("pps:x", 1, 500)], UNITS, 800, 0.1)


def test_handling_grows_with_the_kits_handed_over(fleet_kinds):
    for kind in fleet_kinds.values():
        times = [handling_minutes(kind, n) for n in (0, 1, 5, 20, 60)]
        assert times[0] == kind.unload_min  # the BAST record alone
        assert times == sorted(times) and times[-1] > times[0]
    assert kits_handed_over({"kotak_suara": 14}, ("kotak_suara", 2)) == 7
    assert kits_handed_over({"kotak_suara": 14}, ("kotak_suara", 2), [1, 2]) == 2
    assert kits_handed_over({"kotak_suara": 14}, None) == 0


@pytest.fixture(scope="module")
def fleet_kinds(solve_mahulu):
    _, expect = solve_mahulu
    return {v.type_id: v.kind for v in expect.vehicles.values()}


def pps_stops(plan: Plan):
    for route in plan.routes:
        for stop in route.stops:
            if stop.node_id.startswith("pps:") and stop.deliver:
                yield route, stop


def test_every_served_pps_gets_each_of_its_kits_once_and_whole(solve_mahulu):
    plan, expect = solve_mahulu
    got: dict[str, list[int]] = defaultdict(list)
    for _, stop in pps_stops(plan):
        kits = expect.pps_kits[stop.node_id]
        named = add_goods(*(kits[n - 1] for n in stop.tps_kits))
        kit_items = {i for k in kits for i in k}
        assert {i: q for i, q in stop.deliver.items() if i in kit_items} == named
        got[stop.node_id] += stop.tps_kits
    unserved = {u.node_id for u in plan.unserved}
    for pps, kits in expect.pps_kits.items():
        if pps not in unserved:
            assert sorted(got[pps]) == list(range(1, len(kits) + 1)), pps
    # the PPK stops and port drops name no kits
    assert all(not s.tps_kits for r in plan.routes for s in r.stops if not s.node_id.startswith("pps:"))


def test_handling_time_at_a_stop_follows_its_kits(solve_mahulu):
    plan, expect = solve_mahulu
    by_kits: dict[int, list[int]] = defaultdict(list)
    for route, stop in pps_stops(plan):
        kind = expect.vehicles[route.vehicle_id].kind
        spent = expect.minute(stop.departure) - expect.minute(stop.arrival)
        if stop.departure.date() == stop.arrival.date():  # no night in between
            assert spent == handling_minutes(kind, len(stop.tps_kits)), (route.vehicle_id, stop.node_id)
            by_kits[len(stop.tps_kits)].append(spent)
    assert len(by_kits) >= 2  # stops with different numbers of kits were planned


def test_the_validator_catches_a_split_kit_and_a_rushed_hand_over(solve_mahulu):
    plan, expect = solve_mahulu
    bad = plan.model_copy(deep=True)
    route, stop = next((r, s) for r, s in pps_stops(bad) if len(s.tps_kits) >= 2)
    stop.tps_kits = stop.tps_kits[:-1]  # one kit's goods travel without being named as a kit
    problems = validate_plan(bad, expect)
    assert any(
        f"at {stop.node_id}: the TPS-kit items handed over are not the whole kits" in p for p in problems
    )
    bad = plan.model_copy(deep=True)
    route, stop = next((r, s) for r, s in pps_stops(bad) if len(s.tps_kits) >= 2)
    stop.tps_kits = [stop.tps_kits[0]] * len(stop.tps_kits)
    assert any("handed over more than once" in p for p in validate_plan(bad, expect))
    bad = plan.model_copy(deep=True)
    route, stop = next(
        (r, s) for r, s in pps_stops(bad) if len(s.tps_kits) >= 3 and s.departure.date() == s.arrival.date()
    )
    kind = expect.vehicles[route.vehicle_id].kind
    stop.departure = stop.arrival + timedelta(
        minutes=kind.unload_min + 1
    )  # enough for the BAST, not the kits
    assert any(f"at {stop.node_id} leaves before" in p for p in validate_plan(bad, expect))


def test_old_plans_without_tps_kits_still_read(solve_mahulu):
    plan, _ = solve_mahulu
    raw = json.loads(to_json(plan))
    for route in raw["routes"]:
        for stop in route["stops"]:
            del stop["tps_kits"]
    again = Plan.model_validate(raw)
    assert all(s.tps_kits == [] for r in again.routes for s in r.stops)
    assert Stop.model_fields["tps_kits"].default_factory() == []


def test_manifest_lists_the_kits_by_tps_number(solve_mahulu):
    plan, expect = solve_mahulu
    assert kit_numbers_text([1, 2, 3, 4, 7]) == "1-4, 7"
    assert kit_numbers_text([5]) == "5" and kit_numbers_text([]) == ""
    route, stop = next(pps_stops(plan))
    routes = [r for r in plan.routes if r.vehicle_id == route.vehicle_id]
    items = item_infos(
        [{"id": i, "name": i, "unit_kg": u.unit_kg, "unit_m3": u.unit_m3} for i, u in expect.units.items()]
    )
    frame = manifest_frame(routes, expect.network, items, _node_info(expect))
    row = frame[(frame["node_id"] == stop.node_id) & (frame["activity"] == "unload")].iloc[0]
    assert row["tps_kits"] == kit_numbers_text(stop.tps_kits) != ""


def _node_info(expect) -> pd.DataFrame:
    rows = [{"node_id": p, "tps": len(k), "dpt": 0} for p, k in expect.pps_kits.items()]
    return pd.DataFrame(rows)
