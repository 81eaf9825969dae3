"""Dispatch on the small test network: port choice, latest drop, the tier coupling, every unserved reason."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from planner import dispatch
from planner.catalog import Item
from planner.dispatch import (
    DispatchState,
    KabupatenTask,
    Missed,
    _context,
    _earliest_ppk_arrivals,
    _latest_drop,
    _next_deadlines,
    _plan_pass,
    build_layer_problem,
    plan_kabupaten,
)
from planner.model import validate_problem
from planner.network import Network
from planner.paths import TravelSpeeds
from planner.search import SearchSettings
from planner.vehicles import Assignment, VehicleSpec, VehicleType, add_working_minutes

WH, PPK1, PPK2 = "wh:64.99", "ppk:64.99.01", "ppk:64.99.02"
PORT, JETTY = "port:lanal_sangatta", "jetty:64.99.01.2001"
ISLAND, RIVER_DESA, CUT_OFF = "pps:64.99.02.2002", "pps:64.99.01.2002", "pps:64.99.02.2003"
PPS_OF = {
    "pps:64.99.01.2001": PPK1,
    RIVER_DESA: PPK1,
    "pps:64.99.02.2001": PPK2,
    ISLAND: PPK2,
    CUT_OFF: PPK2,
}
DAYLIGHT = (6 * 60, 18 * 60)
UNITS = (Item("kit", "kit", 10.0, 0.1),)
SETTINGS = SearchSettings(time_limit_s=5, deterministic=True, solution_limit=50, seed_iterations=300)


def _kind(type_id: str, speeds: dict[str, float], capacity_kg: float = 2000, tiers=(1, 2), hours=DAYLIGHT):
    return VehicleType(
        type_id=type_id,
        name=type_id,
        tiers=frozenset(tiers),
        speeds=TravelSpeeds(speeds),
        capacity_kg=capacity_kg,
        capacity_m3=capacity_kg / 100,
        operating_hours=hours,
        load_min=30,
        unload_min=20,
        cost_per_km=5000,
        cost_per_day=500_000,
    )


TRUCK = _kind("truck", {"road": 40.0}, tiers=(1,))
PICKUP = _kind("pickup", {"road": 40.0}, capacity_kg=400, tiers=(2,))
LONGBOAT = _kind("longboat", {"river": 15.0}, capacity_kg=400, tiers=(2,))
SHIP = _kind("ship", {"sea": 20.0}, capacity_kg=5000, hours=None)


def _fleet(*extra: VehicleSpec) -> tuple[VehicleSpec, ...]:
    return (
        VehicleSpec("truck@wh#1", WH, TRUCK),
        VehicleSpec("pickup@ppk1#1", PPK1, PICKUP),
        VehicleSpec("pickup@ppk2#1", PPK2, PICKUP),
        VehicleSpec("longboat@jetty#1", JETTY, LONGBOAT),
        VehicleSpec("ship@port#1", PORT, SHIP),
        *extra,
    )


def _task(network: Network, vehicles=None, kits_per_pps: int = 2, **changes) -> KabupatenTask:
    pps_goods = {pps: {"kit": kits_per_pps} for pps in PPS_OF}
    ppk_goods = {
        ppk: {"kit": sum(g["kit"] for p, g in pps_goods.items() if PPS_OF[p] == ppk)} for ppk in (PPK1, PPK2)
    }
    task = KabupatenTask(
        kabupaten_code="64.99",
        network=network,
        vehicles=vehicles if vehicles is not None else _fleet(),
        items=UNITS,
        ppk_goods=ppk_goods,
        ppk_own={PPK1: {}, PPK2: {}},
        pps_goods=pps_goods,
        pps_ppk=dict(PPS_OF),
        start_minute_of_day=6 * 60,
        ppk_deadline=36 * 60,
        pps_deadline=60 * 60,
        settings=SETTINGS,
    )
    return replace(task, **changes)


def _reasons(result) -> dict[str, str]:
    return {m.node_id: m.reason for m in result.unserved}


def _visited(result, vehicle_id: str) -> list[str]:
    return [v.node_id for t in result.trips if t.vehicle_id == vehicle_id for v in t.visits[1:-1]]


def test_every_desa_is_served_by_road_river_and_sea(maps_network):
    result = plan_kabupaten(_task(maps_network))
    assert result.unserved == () and result.failure == ""
    # the island goes by way of the Lanal port: the PPK's pickup drops there, the ship takes it on
    assert PORT in _visited(result, "pickup@ppk2#1")
    assert ISLAND in _visited(result, "ship@port#1")
    assert RIVER_DESA in _visited(result, "longboat@jetty#1")
    ship_trip = next(t for t in result.trips if t.vehicle_id == "ship@port#1")
    drop = next(
        v for t in result.trips if t.vehicle_id == "pickup@ppk2#1" for v in t.visits if v.node_id == PORT
    )
    assert ship_trip.visits[0].arrival >= drop.departure, "the ship left before the goods reached the port"


def test_the_latest_drop_leaves_the_boat_time_to_make_the_deadline(maps_network):
    task = _task(maps_network)
    ctx = _context(task)
    deadline = 30 * 60
    origin_fleet = [v for v in task.vehicles if v.base == PPK2]
    latest = _latest_drop(task, PORT, [ISLAND], deadline, 2, ctx.paths, origin_fleet)
    sea_minutes = math.ceil(sum(ctx.paths["ship"].path_minutes(PORT, ISLAND)))  # as the trip is laid out
    assert 0 < latest <= deadline - (PICKUP.unload_min + SHIP.load_min + sea_minutes + SHIP.unload_min)


def test_tier_one_deadlines_come_from_what_each_ppk_fleet_needs(maps_network):
    # the desa deadline only 2 h after the PPK deadline: a PPK supplied at its calendar deadline is too late
    task = _task(maps_network, kits_per_pps=30, pps_deadline=38 * 60)
    ctx = _context(task)
    earliest = _earliest_ppk_arrivals(ctx)
    latest, warm = dispatch._backward_pass(ctx, earliest, 4.0)
    deadlines = dispatch._coupled_deadlines(ctx, latest, earliest)
    assert warm, "the backward pass found no tier-2 trips to start from"
    for ppk, deadline in deadlines.items():
        assert earliest[ppk] <= deadline <= task.ppk_deadline
    assert any(d < task.ppk_deadline for d in deadlines.values()), "no PPK needed its goods early"
    result = plan_kabupaten(task)
    assert not [m for m in result.unserved if m.reason in ("capacity", "too_late")]
    for ppk, deadline in deadlines.items():
        arrivals = [v.arrival for t in result.trips if t.tier == 1 for v in t.visits if v.node_id == ppk]
        assert arrivals and max(arrivals) <= deadline


def test_a_deadline_before_the_start_is_too_late_not_a_crash(maps_network):
    # the retry arithmetic of earlier versions produced "window (0, -501)" and aborted the whole solve
    task = _task(maps_network)
    result, _ = _plan_pass(_context(task), 2.0, {PPK2: -501}, {})
    reasons = _reasons(result)
    assert reasons[PPK2] == "too_late"
    assert "after the deadline" in next(m.detail for m in result.unserved if m.node_id == PPK2)
    assert all(reasons[p] == "too_late" for p, ppk in PPS_OF.items() if ppk == PPK2)
    assert PPK1 not in reasons and "pps:64.99.01.2001" not in reasons, "the rest of the kabupaten is planned"


def test_a_layer_never_hands_the_engine_an_empty_window(maps_network):
    task = _task(maps_network)
    ctx = _context(task)
    layer = dispatch._Layer(
        "tier 1",
        1,
        [
            dispatch.Shipment(PPK1, WH, 1, {"kit": 4}, deadline=-10),
            dispatch.Shipment(PPK2, WH, 1, {"kit": 6}, 36 * 60),
        ],
        [v for v in task.vehicles if v.base == WH],
        {WH: 0},
        {},
        {},
    )
    built = build_layer_problem(layer, task, ctx.paths)
    assert built.missed[0].reason == "too_late"
    assert all(0 <= s.window[0] <= s.window[1] for s in built.problem.stops)
    assert {built.problem.stops[i].name for i in range(len(built.problem.stops))} == {PPK2}


def test_a_vehicle_free_only_after_the_horizon_gets_no_row_and_the_layer_still_solves(maps_network):
    """Mahakam Ulu, a river leg blocked: a PPK pickup back from its third trip after the horizon made the
    engine reject the left-over layer ('needs 0 <= earliest_start <= latest_end <= horizon')."""
    task = _task(maps_network, vehicles=_fleet(VehicleSpec("truck@wh#2", WH, TRUCK)))
    ctx = _context(task)
    fleet = [v for v in task.vehicles if v.base == WH]
    late = fleet[0].vehicle_id
    layer = dispatch._Layer(
        "tier 1 (left over)",
        1,
        [dispatch.Shipment(PPK2, WH, 1, {"kit": 6}, 36 * 60)],
        fleet,
        {WH: 0},
        {late: task.pps_deadline + 3 * 1440},
        {late: 3},
    )
    built = build_layer_problem(layer, task, ctx.paths)
    assert built.problem is not None and validate_problem(built.problem) == []
    assert all(not v.id.startswith(f"{late}/") for v in built.problem.vehicles)
    outcome = dispatch._solve_origin(layer, task, ctx.paths, 2.0)
    assert not outcome.missed and outcome.trips and all(t.vehicle_id != late for t in outcome.trips)


def test_every_unserved_reason(maps_network):
    blocked = maps_network.blocked([f"road:{PPK2}-{CUT_OFF}"])
    no_ship = tuple(v for v in _fleet() if v.base != PORT)
    result = plan_kabupaten(_task(blocked, vehicles=no_ship))
    reasons = _reasons(result)
    assert reasons[CUT_OFF] == "unreachable"
    assert reasons[ISLAND] == "no_vehicle"
    assert "pps:64.99.02.2001" not in reasons

    late = plan_kabupaten(_task(maps_network, ppk_deadline=20, pps_deadline=40))
    assert set(_reasons(late).values()) == {"too_late"}

    tiny = tuple(
        replace(v, kind=replace(v.kind, capacity_kg=25.0)) if v.base == PPK2 else v for v in _fleet()
    )
    crowded = plan_kabupaten(_task(maps_network, vehicles=tiny, kits_per_pps=40))
    assert "capacity" in _reasons(crowded).values()


def test_a_failure_in_one_kabupaten_is_reported_not_raised(maps_network, monkeypatch):
    def broken(task):
        raise RuntimeError("engine bug")

    monkeypatch.setattr(dispatch, "plan_tiers", broken)
    result = plan_kabupaten(_task(maps_network))
    assert "engine bug" in result.failure and result.trips == ()
    assert {m.node_id for m in result.unserved} == {PPK1, PPK2, *PPS_OF}
    assert {m.reason for m in result.unserved} == {"planner_error"}


def test_the_retry_rule_is_bounded_and_never_before_the_goods_can_arrive(maps_network):
    task = _task(maps_network)
    earliest = {PPK1: 100, PPK2: 200}
    deadlines = {PPK1: 1500, PPK2: 300}
    result = dispatch.KabupatenResult(
        "64.99",
        (),
        (
            Missed(PPK1, "too_late", "tier 1 missed it"),
            Missed("pps:64.99.02.2001", "capacity", "its pickup ran out of time"),
        ),
        (),
    )
    following = _next_deadlines(task, deadlines, result, {PPK2: 290}, earliest)
    assert PPK1 not in following, "a PPK tier 1 could not supply gets the calendar deadline back"
    assert following[PPK2] == 200, "tightened, but not before the earliest possible arrival"
    again = _next_deadlines(task, following, result, {PPK2: 200}, earliest)
    assert again[PPK2] == 200


@pytest.mark.parametrize("state", [DispatchState(), DispatchState(not_before=120)])
def test_deterministic_dispatch_gives_the_same_trips(maps_network, state):
    first = plan_kabupaten(_task(maps_network, state=state))
    second = plan_kabupaten(_task(maps_network, state=state))
    assert first.trips == second.trips and first.unserved == second.unserved
    assert all(t.visits[0].arrival >= state.not_before for t in first.trips)


def test_the_chain_simulation_counts_the_kit_handling_as_the_engine_does(maps_network):
    """The backward pass re-drives trips with the same handling as the engine: BAST plus a time per TPS kit."""
    task = _task(maps_network)
    ctx = _context(task)
    slow = replace(PICKUP, unload_min_per_kit=30.0)
    desa = "pps:64.99.01.2001"
    matrix = ctx.paths["pickup"]
    first = add_working_minutes(
        0, slow.load_min + math.ceil(matrix.hours_between(PPK1, desa) * 60), slow.operating_hours, 6 * 60
    )

    def trip(kits: int) -> dispatch.Trip:
        visits = (
            dispatch.Visit(PPK1, 0, slow.load_min),
            dispatch.Visit(desa, first, first, kit_count=kits),
            dispatch.Visit(desa, first, first, kit_count=kits),
            dispatch.Visit(PPK1, 0, 0),
        )
        return dispatch.Trip("pickup@ppk1#1", "pickup", PPK1, 2, 1, visits, ())

    deadline = {(PPK1, desa): first + 100}  # the second hand-over must begin within 100 min of the first
    assert dispatch._chain_on_time([trip(0)], 0, slow, matrix, deadline, 6 * 60)
    assert not dispatch._chain_on_time([trip(10)], 0, slow, matrix, deadline, 6 * 60)  # 20 + 300 min


def test_kits_travel_whole_and_name_their_tps_on_the_test_network(maps_network):
    kits = {pps: ({"kit": 1}, {"kit": 1}) for pps in PPS_OF}
    tiny = tuple(  # a pickup takes one kit a load: each PPS needs two loads
        replace(v, kind=replace(v.kind, capacity_kg=15.0, capacity_m3=0.15)) if v.type_id == "pickup" else v
        for v in _fleet()
    )
    result = plan_kabupaten(_task(maps_network, vehicles=tiny, pps_kits=kits))
    assert result.failure == ""
    got: dict[str, list[int]] = {}
    for trip in result.trips:
        for visit in trip.visits[1:-1]:
            if visit.node_id.startswith("pps:"):
                assert visit.kit_count == len(visit.tps_kits) == visit.deliver["kit"]
                got.setdefault(visit.node_id, []).extend(visit.tps_kits)
            else:
                assert visit.tps_kits == () and visit.kit_count == visit.deliver.get("kit", 0)
    served = set(PPS_OF) - set(_reasons(result))
    assert served and all(sorted(got[p]) == [1, 2] for p in served)


def test_an_assign_rule_sends_its_desa_by_its_fleet_not_by_its_ppk(maps_network):
    # a cheaper speedboat at the same port could take the island: the rule gives it to the ship
    speedboat = replace(
        _kind("speedboat", {"sea": 30.0}, capacity_kg=600), cost_per_km=100, cost_per_day=1000
    )
    base = _task(maps_network, vehicles=_fleet(VehicleSpec("speedboat@port#1", PORT, speedboat)))
    free = plan_kabupaten(base)
    assert ISLAND in _visited(free, "speedboat@port#1"), "without the rule the cheaper boat takes the island"
    ppk_goods = {**base.ppk_goods, PPK2: {"kit": base.ppk_goods[PPK2]["kit"] - base.pps_goods[ISLAND]["kit"]}}
    rule = Assignment(PORT, "ship", "the island by the Lanal ship")
    result = plan_kabupaten(replace(base, ppk_goods=ppk_goods, assigned={ISLAND: rule}))
    assert result.unserved == () and result.failure == ""
    by = {t.vehicle_id for t in result.trips for v in t.visits if v.node_id == ISLAND and v.deliver}
    assert by == {"ship@port#1"}
    # its goods skip the PPK: the warehouse truck takes them to the port, PPK2 gets only its other desa's
    assert PORT in _visited(result, "truck@wh#1")
    ship = next(
        t for t in result.trips if t.vehicle_id == "ship@port#1" and ISLAND in [v.node_id for v in t.visits]
    )
    assert ship.tier == 1
    to_ppk2 = sum(v.deliver.get("kit", 0) for t in result.trips for v in t.visits if v.node_id == PPK2)
    assert to_ppk2 == ppk_goods[PPK2]["kit"]
    delivered = sum(v.deliver.get("kit", 0) for t in result.trips for v in t.visits if v.node_id == ISLAND)
    assert delivered == base.pps_goods[ISLAND]["kit"]


def _desa_fleet(slow_kind: VehicleType, fast_kind: VehicleType) -> tuple[VehicleSpec, ...]:
    others = tuple(v for v in _fleet() if v.base != PPK1)
    return (VehicleSpec("slow@ppk1#1", PPK1, slow_kind), VehicleSpec("fast@ppk1#1", PPK1, fast_kind), *others)


def test_loads_the_exact_schedule_finds_late_are_planned_again_with_earlier_windows(
    maps_network, monkeypatch
):
    # Long Pahangai (issue 13): the engine had a cheap longboat arrive in time; laid out by the rules it came
    # late, and the desa was left out while a speedboat stood idle. Here the engine sees the slow pickup 5x
    # faster than it drives.
    slow = replace(_kind("slow", {"road": 8.0}, tiers=(2,), hours=None), cost_per_km=10, cost_per_day=10)
    fast = replace(_kind("fast", {"road": 40.0}, tiers=(2,), hours=None), cost_per_km=9000)
    task = _task(maps_network, vehicles=_desa_fleet(slow, fast))
    ctx = _context(task)
    desa = "pps:64.99.01.2001"
    real = {
        k.type_id: dispatch._fastest_arrival(ctx, [v], PPK1, desa, 0, 2)
        for k, v in ((v.kind, v) for v in task.vehicles if v.base == PPK1)
    }
    deadline = int(real["fast"]) + 10
    assert deadline < real["slow"], "by the rules only the fast pickup makes the deadline"
    monkeypatch.setattr(dispatch, "travel_padding", lambda kind: 0.2 if kind.type_id == "slow" else 1.0)
    layer = dispatch._Layer(
        "tier 2",
        2,
        [dispatch.Shipment(desa, PPK1, 2, {"kit": 2}, deadline)],
        [v for v in task.vehicles if v.base == PPK1],
        {PPK1: 0},
        {},
        {},
    )
    outcome = dispatch._solve_origin(layer, task, ctx.paths, 2.0)
    assert outcome.missed == {}
    assert [t.vehicle_id for t in outcome.trips] == ["fast@ppk1#1"]
    assert outcome.trips[0].visits[1].arrival <= deadline
    assert outcome.stats["readback_rounds"] == 2, "the first solve (the slow pickup) was read back late"


def test_what_the_search_leaves_out_goes_on_single_trips_and_only_once(maps_network):
    task = _task(maps_network)
    ctx = _context(task)
    run = dispatch._Pass.start(ctx, 2.0)
    desa = "pps:64.99.01.2001"
    at_ppk1 = [v for v in task.vehicles if v.base == PPK1]
    first = dispatch._fastest_arrival(ctx, at_ppk1, PPK1, desa, 0, 0, unload=False)
    goods = {"kit": 6}
    kits = tuple(dispatch.Kit(desa, n, {"kit": 1}) for n in range(1, 7))
    half = dispatch.Delivered({"kit": 3}, kits[:3], 100)
    rest = dispatch._remainder(dispatch.Shipment(desa, PPK1, 2, goods, 10**4, kits=kits), half)
    assert rest.items == {"kit": 3} and [k.number for k in rest.kits] == [4, 5, 6]

    run.available["pickup@ppk1#1"] = 500  # busy until minute 500
    outcome = run._single_trips("tier 2 (single trips)", 2, [rest], at_ppk1, {PPK1: 0})
    assert outcome.missed == {}
    (trip,) = outcome.trips
    assert trip.visits[0].arrival >= 500 and trip.visits[1].arrival <= 10**4
    assert trip.visits[1].deliver == {"kit": 3} and trip.visits[1].tps_kits == (4, 5, 6)
    assert run.available["pickup@ppk1#1"] == trip.visits[-1].arrival and run.trips == [trip]

    merged = dispatch._with_retry(
        dispatch._LayerOutcome([], {}, {0: Missed(desa, "capacity", "left out")}, {}, delivered={0: half}),
        [0],
        outcome,
    )
    assert merged.missed == {} and merged.delivered[0].items == goods
    assert merged.arrivals[0] == outcome.delivered[0].done

    too_soon = replace(rest, deadline=int(first) - 1)
    late = run._single_trips("again", 2, [too_soon], at_ppk1, {PPK1: 0})
    assert late.trips == [] and late.missed[0].reason == "capacity"


def test_no_desa_gets_its_goods_twice_when_the_search_leaves_loads_over(maps_network):
    tiny = tuple(
        replace(v, kind=replace(v.kind, capacity_kg=25.0)) if v.base == PPK2 else v for v in _fleet()
    )
    task = _task(maps_network, vehicles=tiny, kits_per_pps=12)
    result = plan_kabupaten(task)
    unserved = set(_reasons(result))
    for pps, goods in task.pps_goods.items():
        got = sum(v.deliver.get("kit", 0) for t in result.trips for v in t.visits if v.node_id == pps)
        assert got <= goods["kit"], f"{pps} got {got} kits of {goods['kit']}"
        if pps not in unserved:
            assert got == goods["kit"]
