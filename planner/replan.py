"""Re-plan a plan under way when legs are blocked (or opened again) at a given moment `at`.

Everything before `at` is fixed: trips back at base, and every stop a vehicle reached. A trip under way
finishes the leg it is on, keeps its schedule while its way is open, and from the first stop whose way is
blocked drives to its remaining stops in the same order over open legs, then home; a stop it can no longer
reach (or reach in time) is skipped and its goods go back to base (the trip's load then counts only what it
delivered). A vehicle that cannot get home is `stranded_at` where it is, with the goods it still carries.
Trips not yet started are kept unless they use a blocked leg, belong to a stranded or delayed vehicle, or
start from a port whose goods now arrive differently; the goods of the dropped trips are planned again by the
dispatcher from the state at `at` (goods at the warehouse, at PPKs and at ports, vehicles busy until their
last kept trip ends), warm-started from the dropped routes. A trip from a PPK whose goods now arrive
differently is held: stage 1 plans the PPK's goods to be there before its first held trip starts; where they
are (`late_ppks`), its trips stay as planned, else stage 2 drops them and plans their goods again, from the
PPK's new arrival (`first_stage`, `second_stage`).

The new plan records the change (`replan`: based on, at, blocked, unblocked), so the validator accepts a leg
driven before it was blocked. `plan_diff` lists what changed for the officer.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from planner.dispatch import (
    DispatchState,
    HubStock,
    KabupatenTask,
    Missed,
    add_goods,
    unmet_dues,
)
from planner.errors import InputError
from planner.execution import Backend, Progress
from planner.goods import goods_left
from planner.network import Network
from planner.nodes import is_hub, is_ppk
from planner.paths import leg_minutes, shortest_paths
from planner.pipeline import Problem, kabupaten_tasks, run_tasks, trip_route, with_kpis
from planner.plan import Plan, Replan, Route, ScenarioRef, Stop, Unserved, content_hash, to_json
from planner.scenario import ScenarioInputs
from planner.settings import SearchSettings
from planner.validate import Expectations, stop_handling
from planner.vehicles import (
    Driving,
    VehicleSpec,
    add_working_minutes,
    after_stop,
    arrival_minute,
    drive_legs,
    handling_minutes,
    kits_handed_over,
)


@dataclass(frozen=True)
class Change:
    """The request: legs to block and to open again, from minute `at` of the plan."""

    block: tuple[str, ...]
    unblock: tuple[str, ...]
    at: datetime


@dataclass(frozen=True)
class Continuation:
    """A trip under way at `at`, re-routed from its next node; `returned` goes back to base."""

    route: Route
    returned: dict[str, int]
    skipped: tuple[Stop, ...]  # the stops it no longer makes, with the goods it brings back
    rerouted: bool = True  # False: it goes on exactly as planned

    @property
    def stranded(self) -> bool:
        """No open leg leads home: the vehicle, and the goods it could not deliver, stay where it is."""
        return self.route.stranded_at is not None


# ---------------------------------------------------------------- the change


def check_change(plan: Plan, network: Network, change: Change) -> None:
    """Unknown leg ids and a moment outside the plan are user mistakes (InputError, exit 2)."""
    unknown = [leg for leg in (*change.block, *change.unblock) if leg not in network.legs.index]
    problems = [f"{leg}: not a leg of the network {network.source or ''}".rstrip() for leg in unknown]
    both = sorted(set(change.block) & set(change.unblock))
    problems += [f"{leg}: both blocked and unblocked" for leg in both]
    if change.at.tzinfo is None:
        problems.append("--at: give the time with its offset, e.g. 2024-11-24T10:00+08:00")
    elif not plan.calendar.start <= change.at < plan.calendar.pps_deadline:
        problems.append(
            f"--at {change.at.isoformat()} is outside the plan's calendar: give a moment from its start "
            f"{plan.calendar.start.isoformat()} to before its PPS deadline {plan.calendar.pps_deadline.isoformat()}"
        )
    if problems:
        raise InputError("cannot re-plan", problems=problems)


def blocked_after(plan: Plan, change: Change) -> list[str]:
    return sorted((set(plan.blocked_legs) | set(change.block)) - set(change.unblock))


def apply_change(inputs: ScenarioInputs, plan: Plan, change: Change) -> ScenarioInputs:
    """The scenario inputs with the plan's blocked legs and the change applied to the network."""
    network = inputs.network.unblocked(change.unblock).blocked(blocked_after(plan, change))
    return replace(inputs, network=network)


def _destinations(route: Route) -> set[str]:
    return {s.node_id for s in route.stops if s.deliver}


def split_routes(
    routes: Sequence[Route], expect: Expectations, at: int
) -> tuple[list[Route], list[Route], list[Continuation], list[Held]]:
    """(kept, dropped, continued, held) trips of one kabupaten at minute `at` on the changed network.

    Kept: trips back before `at`, trips under way (re-routed where needed), and trips not yet started that
    use no blocked leg and whose goods reach their base as planned. Dropped: the other trips not yet started;
    their goods are planned again. Held: trips from a PPK whose goods now come differently (or from a port
    those trips feed): they are kept if the PPK's goods still arrive in time for them (`need_by`,
    `late_ppks`), else planned again too (`second_stage`)."""
    network = expect.network
    blocked = set(network.legs.index[network.legs["status"] != "open"])
    kept: list[Route] = []
    future: list[Route] = []
    continued: list[Continuation] = []
    moved: set[str] = set()  # nodes whose deliveries no longer come as planned
    for route in routes:
        if expect.minute(route.stops[-1].arrival) <= at:
            kept.append(route)
        elif expect.minute(route.stops[0].arrival) >= at:  # a trip loading at `at` is under way
            future.append(route)
        else:
            cont = continue_trip(route, expect.vehicles[route.vehicle_id], network, expect, at)
            continued.append(cont)
            kept.append(cont.route)
            if cont.rerouted:
                moved |= _destinations(route)
    stranded = {c.route.vehicle_id for c in continued if c.stranded}
    busy_until: dict[str, datetime] = {}
    for route in kept:
        busy_until[route.vehicle_id] = max(
            busy_until.get(route.vehicle_id, route.stops[-1].departure), route.stops[-1].departure
        )
    dropped = [
        r
        for r in future
        if blocked.intersection(r.legs)
        or r.vehicle_id in stranded
        or r.stops[0].arrival < busy_until.get(r.vehicle_id, r.stops[0].arrival)
    ]
    dropped = _with_later_trips(dropped, future)
    for route in dropped:
        moved |= _destinations(route)
    # a trip from a port whose goods now come differently is planned again too; a tier-2 trip from a PPK
    # whose goods now come differently waits for the PPK's new arrival (held), and so does a tier-2 trip from
    # a port that held trips deliver to
    while True:
        gone = {id(r) for r in dropped}
        waits: dict[int, frozenset[str]] = {}  # index in `future` -> the PPKs it waits on
        changed = True
        while changed:
            changed = False
            pending: dict[str, set[str]] = defaultdict(set)  # node -> PPKs whose held trips deliver there
            for i, ppks in waits.items():
                for node in _destinations(future[i]):
                    pending[node] |= ppks
            for i, r in enumerate(future):
                if id(r) in gone or r.tier != 2 or (r.base in moved and not is_ppk(r.base)):
                    continue
                on = set(pending.get(r.base, ())) | ({r.base} if r.base in moved else set())
                if on and not on <= waits.get(i, frozenset()):
                    waits[i] = frozenset(on | waits.get(i, frozenset()))
                    changed = True
        more = [r for r in future if id(r) not in gone and r.base in moved and not is_ppk(r.base)]
        if not more:
            break
        dropped = _with_later_trips([*dropped, *more], future)
        for route in dropped:
            moved |= _destinations(route)
    gone = {id(r) for r in dropped}
    held = [Held(future[i], ppks) for i, ppks in sorted(waits.items()) if id(future[i]) not in gone]
    held_ids = {id(h.route) for h in held}
    kept += [r for r in future if id(r) not in gone and id(r) not in held_ids]
    return kept, dropped, continued, held


def _with_later_trips(dropped: Sequence[Route], routes: Sequence[Route]) -> list[Route]:
    """`dropped` and every later trip of `routes` by the same vehicles. The dispatcher knows a vehicle as free
    from the end of its last kept trip, so a dropped morning trip before a kept afternoon one would leave the
    vehicle idle all morning (Kutai Kartanegara: three trucks lost their first trip that way, and Muara Kaman's
    goods came too late for its far desa)."""
    first_dropped: dict[str, int] = {}
    for route in dropped:
        first_dropped[route.vehicle_id] = min(first_dropped.get(route.vehicle_id, route.trip), route.trip)
    gone = {id(r) for r in dropped}
    later = [
        r
        for r in routes
        if id(r) not in gone and r.vehicle_id in first_dropped and r.trip > first_dropped[r.vehicle_id]
    ]
    return [*dropped, *later]


@dataclass(frozen=True)
class Held:
    """A trip kept only if the PPKs it depends on get their goods in time for it."""

    route: Route
    waits_on: frozenset[str]


def need_by(held: Sequence[Held], expect: Expectations) -> dict[str, int]:
    """Per PPK with held trips: the minute its first held trip starts (its goods must be unloaded by then)."""
    due: dict[str, int] = {}
    for h in held:
        if h.route.base in h.waits_on:
            start = expect.minute(h.route.stops[0].arrival)
            due[h.route.base] = min(due.get(h.route.base, start), start)
    return due


def late_ppks(
    due: Mapping[str, int], routes: Sequence[Route], unserved: Iterable[str], expect: Expectations
) -> set[str]:
    """The PPKs of `due` whose goods, on `routes` (the kept trips and those planned again, held ones left
    out), are not all unloaded by the minute due, or not at all (`unserved` node ids)."""
    arrival: dict[str, int] = {}
    for route in routes:
        for stop in _drops(route):
            if stop.node_id in due:
                arrival[stop.node_id] = max(arrival.get(stop.node_id, 0), expect.minute(stop.departure))
    missing = set(unserved)
    return {p for p, minute in due.items() if p in missing or arrival.get(p, math.inf) > minute}


# ---------------------------------------------------------------- trips under way


def segments(route: Route, network: Network) -> list[list[str]]:
    """The legs between consecutive stops: segments[i] leads from stop i to stop i + 1."""
    legs = network.legs
    out: list[list[str]] = [[] for _ in route.stops[1:]]
    position, next_stop = route.base, 1
    for leg_id in route.legs:
        leg = legs.loc[leg_id]
        position = leg["to_node"] if leg["from_node"] == position else leg["from_node"]
        out[next_stop - 1].append(leg_id)
        while next_stop < len(route.stops) - 1 and route.stops[next_stop].node_id == position:
            next_stop += 1
    return out


def _account_at(
    route: Route,
    spec: VehicleSpec,
    network: Network,
    expect: Expectations,
    reached: int,
    start: Driving | None = None,
) -> tuple[Driving | None, int]:
    """The driver's account on reaching stop `reached`, and the minute it can, the trip laid out as the
    validator does (from each stop's departure by `drive_legs`; the trip starts with the account `start`, by
    default nothing driven)."""
    kind, legs, day = spec.kind, network.legs, expect.start_minute_of_day
    driving, arrived = start, expect.minute(route.stops[0].arrival)
    for i, segment in enumerate(segments(route, network)[:reached], start=1):
        departure = expect.minute(route.stops[i - 1].departure)
        handling = stop_handling(route, i - 1, kind, expect)
        driving = after_stop(kind, driving or Driving(), arrived, departure, handling)
        minutes = [leg_minutes(legs.loc[leg_id], kind.speeds) for leg_id in segment]
        laid, driving = drive_legs(kind, departure, minutes, day, driving)
        arrived = arrival_minute(departure, laid)
    return driving, arrived


def _leaving(
    route: Route,
    spec: VehicleSpec,
    network: Network,
    expect: Expectations,
    k: int,
    start: Driving | None = None,
) -> Driving:
    """The driver's account on leaving stop k as planned (the trip begun with the account `start`)."""
    driving, arrived = _account_at(route, spec, network, expect, k, start)
    departure = expect.minute(route.stops[k].departure)
    handling = stop_handling(route, k, spec.kind, expect)
    return after_stop(spec.kind, driving or Driving(), arrived, departure, handling)


def position_at(
    route: Route, spec: VehicleSpec, network: Network, expect: Expectations, at: int
) -> tuple[int, str, int, list[str]]:
    """(index of the last stop reached, next node, minute there, legs from that stop to the node)."""
    return _position(route, spec, network, expect, at)[:4]


def _position(
    route: Route, spec: VehicleSpec, network: Network, expect: Expectations, at: int
) -> tuple[int, str, int, list[str], Driving]:
    """`position_at` and the driver's account there. The legs are laid out by the driving rules
    (`drive_legs`): a vehicle waiting at a node at `at` (for the morning, or a break) is at that node."""
    minute = expect.minute
    reached = max(i for i, s in enumerate(route.stops[:-1]) if minute(s.arrival) <= at)
    departure = minute(route.stops[reached].departure)
    here = route.stops[reached].node_id
    driving = _leaving(route, spec, network, expect, reached)
    if departure >= at:
        return reached, here, departure, [], driving
    legs = network.legs
    segment = segments(route, network)[reached]
    minutes = [leg_minutes(legs.loc[leg_id], spec.kind.speeds) for leg_id in segment]
    laid, _ = drive_legs(spec.kind, departure, minutes, expect.start_minute_of_day, driving)
    travelled: list[str] = []
    position, when = here, departure
    for leg_id, t in zip(segment, laid, strict=True):
        if t.start >= at:
            break  # waiting at `position` for this leg
        leg = legs.loc[leg_id]
        position = leg["to_node"] if leg["from_node"] == position else leg["from_node"]
        when = math.ceil(t.end - 1e-9)
        travelled.append(leg_id)
        if when > at:
            break
    _, driving = drive_legs(
        spec.kind, departure, minutes[: len(travelled)], expect.start_minute_of_day, driving
    )
    return reached, position, when, travelled, driving


def continue_trip(
    route: Route, spec: VehicleSpec, network: Network, expect: Expectations, at: int
) -> Continuation:
    """The trip as driven until `at`, then from its next node to its remaining stops (same order) and home."""
    reached, node, when, travelled, driving = _position(route, spec, network, expect, at)
    kind = spec.kind
    hours, day = kind.operating_hours, expect.start_minute_of_day
    parts = segments(route, network)
    open_legs = set(network.legs.index[network.legs["status"] == "open"])
    stops = list(route.stops[: reached + 1])
    legs = [leg for segment in parts[:reached] for leg in segment] + travelled
    # as planned, up to the first stop whose way there is no longer open
    following = reached + 1
    if open_legs.issuperset(parts[reached]):
        legs += parts[reached][len(travelled) :]
        while following < len(route.stops) - 1 and open_legs.issuperset(parts[following - 1]):
            if following > reached + 1:
                legs += parts[following - 1]
            stops.append(route.stops[following])
            following += 1
        if following == len(route.stops) - 1 and open_legs.issuperset(parts[following - 1]):
            return Continuation(route, {}, (), rerouted=False)
        node = stops[-1].node_id
        when = expect.minute(stops[-1].departure)
        driving = _leaving(route, spec, network, expect, following - 1)
    remaining = [s for s in route.stops[following:-1] if s.deliver]
    matrix = shortest_paths(network, kind.speeds, sources=sorted({node, *(s.node_id for s in remaining)}))
    returned: dict[str, int] = {}
    skipped = []
    for stop in remaining:
        due = expect.deadline_of(stop.node_id)
        deadline = expect.minute(due) if due is not None else None
        arrival, account = _drive_to(kind, matrix, node, stop.node_id, when, day, driving)
        if arrival is None or (deadline is not None and arrival > deadline):
            returned = add_goods(returned, stop.deliver)
            skipped.append(stop)
            continue
        kits = kits_handed_over(stop.deliver, expect.kit_marker, stop.tps_kits)
        departure = add_working_minutes(arrival, handling_minutes(kind, kits), hours, day)
        legs += matrix.path_legs(node, stop.node_id)
        stops.append(
            stop.model_copy(update={"arrival": expect.at(arrival), "departure": expect.at(departure)})
        )
        node, when, driving = stop.node_id, departure, account
    home = shortest_paths(network, kind.speeds, sources=[node])
    stranded_at = None
    if np.isfinite(home.hours_between(node, route.base)):
        back, _ = _drive_to(kind, home, node, route.base, when, day, driving)
        unloaded = add_working_minutes(back, kind.unload_min, hours, day) if returned else back
        legs += home.path_legs(node, route.base)
        stops.append(Stop(node_id=route.base, arrival=expect.at(back), departure=expect.at(unloaded)))
    else:
        stranded_at, returned = node, {}
        if stops[-1].node_id != node:
            stops.append(Stop(node_id=node, arrival=expect.at(when), departure=expect.at(when)))
    # the stops before `at` stay as they were (the load too): what comes back is recorded as `returned`
    new = route.model_copy(
        update={"stops": stops, "legs": legs, "stranded_at": stranded_at, "returned": dict(returned)}
    )
    return Continuation(new, returned, tuple(skipped))


def _drive_to(
    kind, matrix, a: str, b: str, when: int, day: int, driving: Driving
) -> tuple[int | None, Driving]:
    """The minute a vehicle leaving a at `when` reaches b by the driving rules, and its account then; None when
    no open legs lead there."""
    if not np.isfinite(matrix.hours_between(a, b)):
        return None, driving
    laid, after = drive_legs(kind, when, matrix.path_minutes(a, b), day, driving)
    return arrival_minute(when, laid), after


# ---------------------------------------------------------------- what is left to move


def _drops(route: Route) -> list[Stop]:
    return [s for s in route.stops[1:] if s.deliver]


class _Onward:
    """The stops the goods at a port were to go on to, each with what it can still take."""

    def __init__(self, entries: Sequence[tuple[int, Stop, int]]):
        self.entries = list(entries)  # (tier, stop, ready)
        self.room = [dict(stop.deliver) for _, stop, _ in self.entries]

    def take(self, goods: Mapping[str, int]) -> list[tuple[int, Stop, int, dict[str, int]]]:
        left, out = dict(goods), []
        for (tier, stop, ready), room in zip(self.entries, self.room, strict=True):
            share = {i: min(q, left.get(i, 0)) for i, q in room.items() if min(q, left.get(i, 0)) > 0}
            if share:
                left = goods_left(left, share)
                for i, q in share.items():
                    room[i] -= q
                out.append((tier, stop, ready, share))
        return out


@dataclass
class _Standing:
    """Where the goods stand at `at` after the kept trips: per node what it got, per port what was dropped
    there and what its vessels took on, when vehicles are free again and when bases may load again."""

    delivered: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    kits_done: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    arrived: dict[str, int] = field(default_factory=dict)
    port_in: dict[tuple, dict[str, int]] = field(
        default_factory=lambda: defaultdict(dict)
    )  # (port, tier, origin)
    port_out: dict[tuple, dict[str, int]] = field(
        default_factory=lambda: defaultdict(dict)
    )  # its vessels' drops
    vehicle_free: dict[str, int] = field(default_factory=dict)
    trips_done: dict[str, int] = field(default_factory=dict)
    base_release: dict[str, int] = field(default_factory=dict)
    lost: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))  # on stranded vehicles
    why_lost: dict[str, str] = field(default_factory=dict)
    at_hub: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(dict)
    )  # waiting for a vessel

    def still_to_move(self, node: str, goods: Mapping[str, int]) -> dict[str, int]:
        return goods_left(goods, add_goods(self.delivered[node], self.at_hub[node], self.lost.get(node, {})))


PortGroup = Callable[[str, int, str], tuple[str, int, str]]


def _port_group(task: KabupatenTask) -> PortGroup:
    warehouse = task.network.warehouse_of(task.kabupaten_code)

    def group(hub: str, tier: int, destination: str) -> tuple[str, int, str]:
        """Goods at a port are told apart by tier and origin: whose goods they are decides where they go."""
        return hub, tier, warehouse if tier == 1 else task.pps_ppk.get(destination, "")

    return group


def _standing_after(
    kept: Sequence[Route], continued: Sequence[Continuation], group: PortGroup, expect: Expectations
) -> _Standing:
    minute = expect.minute
    here = _Standing()
    for cont in continued:
        if cont.returned:
            back = minute(cont.route.stops[-1].departure)  # unloaded
            here.base_release[cont.route.base] = max(here.base_release.get(cont.route.base, 0), back)
    for route in kept:
        here.vehicle_free[route.vehicle_id] = max(
            here.vehicle_free.get(route.vehicle_id, 0), minute(route.stops[-1].departure)
        )
        here.trips_done[route.vehicle_id] = max(here.trips_done.get(route.vehicle_id, 0), route.trip)
        for stop in _drops(route):
            here.arrived[stop.node_id] = max(here.arrived.get(stop.node_id, 0), minute(stop.departure))
            if is_hub(stop.node_id):
                key = (stop.node_id, route.tier, route.base)
                here.port_in[key] = add_goods(here.port_in[key], stop.deliver)
            else:
                here.delivered[stop.node_id] = add_goods(here.delivered[stop.node_id], stop.deliver)
                here.kits_done[stop.node_id].update(stop.tps_kits)
            if is_hub(route.base):
                key = group(route.base, route.tier, stop.node_id)
                here.port_out[key] = add_goods(here.port_out[key], stop.deliver)
    return here


def _onward_of(
    continued: Sequence[Continuation], dropped: Sequence[Route], group: PortGroup, here: _Standing, at: int
) -> dict[tuple, _Onward]:
    """Where the goods at (or bound for) a port were going: skipped stops of its vessels, then dropped trips."""
    entries: dict[tuple, list[tuple[int, Stop, int]]] = defaultdict(list)
    for cont in continued:
        if is_hub(cont.route.base) and not cont.stranded:
            for stop in cont.skipped:
                key = group(cont.route.base, cont.route.tier, stop.node_id)
                entries[key].append((cont.route.tier, stop, here.base_release.get(cont.route.base, at)))
    for route in sorted(dropped, key=lambda r: (r.stops[0].arrival, r.vehicle_id)):
        if is_hub(route.base):
            for stop in _drops(route):
                key = group(route.base, route.tier, stop.node_id)
                entries[key].append((route.tier, stop, here.arrived.get(route.base, at)))
    return {key: _Onward(rows) for key, rows in entries.items()}


def _count_lost(
    continued: Sequence[Continuation], onward: Mapping[tuple, _Onward], group: PortGroup, here: _Standing
) -> None:
    """Goods on a stranded vehicle are lost to this plan (and not at the port it was to deliver them to)."""
    for cont in continued:
        if not cont.stranded:
            continue
        where = f"on {cont.route.vehicle_id}, stuck at {cont.route.stranded_at} (no open leg leads back)"
        for stop in cont.skipped:
            key = (stop.node_id, cont.route.tier, cont.route.base)
            if is_hub(stop.node_id) and key in onward:
                for _, final, _, share in onward[key].take(stop.deliver):
                    here.lost[final.node_id] = add_goods(here.lost[final.node_id], share)
                    here.why_lost[final.node_id] = f"its goods are {where}"
            else:
                here.lost[stop.node_id] = add_goods(here.lost[stop.node_id], stop.deliver)
                here.why_lost[stop.node_id] = f"its goods are {where}"
            if is_hub(cont.route.base):  # delivered nothing there: not in port_out either
                key = group(cont.route.base, cont.route.tier, stop.node_id)
                here.port_in[key] = goods_left(here.port_in[key], stop.deliver)


def _hub_stock(
    task: KabupatenTask, onward: Mapping[tuple, _Onward], here: _Standing, at: int
) -> list[HubStock]:
    """The goods waiting at each port for a vessel, by destination (`here.at_hub` is filled on the way)."""
    stock: list[HubStock] = []
    for key in sorted(here.port_in):
        hub, tier, origin = key
        left = goods_left(here.port_in[key], here.port_out[key])
        for tier, final, ready, share in onward[key].take(left) if key in onward else []:
            left = goods_left(left, share)
            here.at_hub[final.node_id] = add_goods(here.at_hub[final.node_id], share)
            stock.append(HubStock(tier, hub, final.node_id, share, ready))
        # what is still there was left behind for destinations the old plan could not serve from this port
        goods_of = task.ppk_goods if tier == 1 else task.pps_goods
        for node in sorted(n for n in goods_of if tier == 1 or task.pps_ppk[n] == origin):
            need = here.still_to_move(node, goods_of[node])
            if need and all(q <= left.get(i, 0) for i, q in need.items()):
                left = goods_left(left, need)
                here.at_hub[node] = add_goods(here.at_hub[node], need)
                stock.append(HubStock(tier, hub, node, need, here.arrived.get(hub, at)))
    return stock


def dispatch_state(
    task: KabupatenTask,
    kept: Sequence[Route],
    dropped: Sequence[Route],
    continued: Sequence[Continuation],
    expect: Expectations,
    at: int,
    ppk_due: Mapping[str, int] | None = None,
) -> tuple[KabupatenTask, DispatchState, list[Missed]]:
    """The task reduced to the goods still to move, where vehicles, PPKs and ports stand at `at`, and the
    destinations whose goods are stuck on a stranded vehicle (unserved). `ppk_due`: PPKs whose held trips
    start at that minute (`need_by`)."""
    group = _port_group(task)
    here = _standing_after(kept, continued, group, expect)
    onward = _onward_of(continued, dropped, group, here, at)
    _count_lost(continued, onward, group, here)
    stock = _hub_stock(task, onward, here, at)
    for pps, ppk in sorted(task.pps_ppk.items()):
        if here.lost.get(ppk) and (left := here.still_to_move(pps, task.pps_goods[pps])):
            here.lost[pps] = add_goods(here.lost[pps], left)
            here.why_lost[pps] = f"the goods of its PPK {ppk} are stuck: {here.why_lost[ppk]}"
    ppk_goods = {p: left for p, goods in task.ppk_goods.items() if (left := here.still_to_move(p, goods))}
    pps_goods = {p: left for p, goods in task.pps_goods.items() if (left := here.still_to_move(p, goods))}
    ppk_ready = {
        p: here.arrived.get(p, 0)
        for p in task.ppk_goods
        if p not in ppk_goods and not here.at_hub[p] and not here.lost.get(p)
    }
    for ppk in task.ppk_goods:
        # a PPK that still waits for some goods has the rest from kept trips: its vehicles leave after both
        if ppk not in ppk_ready and ppk in here.arrived:
            here.base_release[ppk] = max(here.base_release.get(ppk, 0), here.arrived[ppk])
    driving: dict[str, Driving] = {}
    under_way = [c.route for c in continued]
    for route in sorted([*kept, *under_way], key=lambda r: (r.vehicle_id, r.stops[0].arrival, r.trip)):
        if (spec := expect.vehicles.get(route.vehicle_id)) is not None:
            last = len(route.stops) - 1
            driving[route.vehicle_id] = _leaving(
                route, spec, task.network, expect, last, driving.get(route.vehicle_id)
            )
    warm: dict[tuple[str, int], list[tuple[str, ...]]] = defaultdict(list)
    for route in sorted(dropped, key=lambda r: (r.vehicle_id, r.trip)):
        warm[(route.vehicle_id, route.tier)].append(tuple(s.node_id for s in _drops(route)))
    state = DispatchState(
        not_before=at,
        vehicle_free=here.vehicle_free,
        trips_done=here.trips_done,
        ppk_ready=ppk_ready,
        base_release=here.base_release,
        hub_stock=tuple(stock),
        warm_routes={k: tuple(v) for k, v in warm.items()},
        kits_done={node: frozenset(kits) for node, kits in here.kits_done.items() if kits},
        ppk_due=dict(ppk_due or {}),
        driving=driving,
    )
    stranded = {c.route.vehicle_id for c in continued if c.stranded}
    reduced = replace(
        task,
        vehicles=tuple(v for v in task.vehicles if v.vehicle_id not in stranded),
        ppk_goods=ppk_goods,
        pps_goods=pps_goods,
        pps_ppk=dict(task.pps_ppk),  # all: a PPK's kits are those of all its desa (held trips too)
    )
    missed = [
        Missed(node, "unreachable", here.why_lost[node]) for node in sorted(here.lost) if here.lost[node]
    ]
    return reduced, state, missed


# ---------------------------------------------------------------- the two stages of a kabupaten


@dataclass(frozen=True)
class Stage:
    """One kabupaten's re-plan at one stage: the trips kept (and held), those dropped, and the reduced task that
    plans the goods of the dropped trips (`task`, with its state and a share of the search time)."""

    kept: list[Route]
    dropped: list[Route]
    continued: list[Continuation]
    held: list[Held]
    due: dict[str, int]
    task: KabupatenTask
    lost: list[Missed]

    @property
    def left(self) -> int:
        return len(self.task.ppk_goods) + len(self.task.pps_goods) + len(self.task.state.hub_stock)

    @property
    def all_kept(self) -> list[Route]:
        return [*self.kept, *(h.route for h in self.held)]

    def planned_nodes(self) -> set[str]:
        """The nodes whose goods this stage plans."""
        task = self.task
        return {*task.ppk_goods, *task.pps_goods, *(s.destination for s in task.state.hub_stock)}


def _sized(task: KabupatenTask, reduced: KabupatenTask, state: DispatchState) -> KabupatenTask:
    """The reduced task with its state and a share of the search time as large as the share of stops left."""
    left = len(reduced.ppk_goods) + len(reduced.pps_goods) + len(state.hub_stock)
    share = left / max(len(task.ppk_goods) + len(task.pps_goods), 1)
    limit = max(1.0, task.settings.time_limit_s * share)
    return replace(reduced, state=state, settings=replace(task.settings, time_limit_s=limit))


def first_stage(task: KabupatenTask, routes: Sequence[Route], expect: Expectations, at: int) -> Stage:
    """Stage 1: plan the goods of the dropped trips, the held trips kept, each PPK they wait on due when its
    first held trip starts (the dispatcher falls back to the calendar's deadline where it cannot). A PPK whose
    goods cannot be there by then in any case (`unmet_dues`) is not held: its trips are planned again at once,
    with the rest, so that the dispatcher couples its tiers as in a plan from scratch."""
    kept, dropped, continued, held = split_routes(routes, expect, at)

    def stage(dropped: list[Route], held: list[Held]) -> Stage:
        dropped = _with_later_trips(dropped, [*kept, *(h.route for h in held)])
        gone = {id(r) for r in dropped}
        held = [h for h in held if id(h.route) not in gone]
        due = need_by(held, expect)
        still = [r for r in kept if id(r) not in gone]
        reduced, state, lost = dispatch_state(
            task, [*still, *(h.route for h in held)], dropped, continued, expect, at, due
        )
        return Stage(still, dropped, continued, held, due, _sized(task, reduced, state), lost)

    first = stage(dropped, held)
    unmet = unmet_dues(first.task) if first.due else set()
    if not unmet:
        return first
    # a held trip from a port waits on the PPKs whose held trips feed it: it goes with them
    return stage(
        [*dropped, *(h.route for h in held if h.waits_on & unmet)],
        [h for h in held if not h.waits_on & unmet],
    )


def second_stage(
    task: KabupatenTask,
    first: Stage,
    planned: Sequence[Route],
    unserved: Sequence[Missed],
    expect: Expectations,
    at: int,
) -> Stage | None:
    """Stage 2, for the PPKs whose goods now arrive after their held trips start (or not at all), or some of
    whose desa stage 1 left over for capacity or time (their vehicles were busy with the held trips): those
    held trips, the tier-2 trips stage 1 planned from those PPKs, and the tier-2 trips from ports that these
    deliver to are dropped, and their goods planned again together from the PPK's new arrival (the other trips
    of stage 1, `planned`, are kept now). None when no PPK is late."""
    nodes = [m.node_id for m in unserved]
    late = late_ppks(first.due, [*first.kept, *planned], nodes, expect)
    late |= {
        task.pps_ppk[m.node_id]
        for m in unserved
        if m.reason in ("capacity", "too_late") and task.pps_ppk.get(m.node_id) in first.due
    }
    if not late:
        return None
    others = [h.route for h in first.held if not h.waits_on & late] + list(planned)
    every = [*first.kept, *others]  # a later trip is never under way: any of them may go with a dropped one
    dropped = _with_later_trips([h.route for h in first.held if h.waits_on & late], every)
    moved = set(late)
    while True:  # from the late PPKs on, and from the ports their trips deliver to
        for route in dropped:
            moved |= _destinations(route)
        gone = {id(r) for r in dropped}
        more = [r for r in others if id(r) not in gone and r.tier == 2 and r.base in moved]
        if not more:
            break
        dropped = _with_later_trips([*dropped, *more], every)
    gone = {id(r) for r in dropped}
    kept = [r for r in every if id(r) not in gone]
    reduced, state, lost = dispatch_state(task, kept, dropped, first.continued, expect, at)
    return Stage(kept, dropped, first.continued, [], {}, _sized(task, reduced, state), lost)


def merge_unserved(earlier: Sequence[Missed], stage: Stage, missed: Sequence[Missed]) -> list[Missed]:
    """The unserved stops after `stage` (`missed`: its dispatcher's): its word on the nodes it planned again
    replaces the `earlier` stage's."""
    again = stage.planned_nodes()
    out = {m.node_id: m for m in earlier if m.node_id not in again}
    for m in [*stage.lost, *missed]:
        out.setdefault(m.node_id, m)
    return [out[n] for n in sorted(out)]


# ---------------------------------------------------------------- the re-plan


@dataclass(frozen=True)
class ReplanResult:
    plan: Plan
    replanned: tuple[str, ...]  # kabupaten planned again
    continued: tuple[Continuation, ...]


@dataclass
class _StagedReplan:
    """The re-plan of every kabupaten in two stages (first_stage, second_stage), on a backend."""

    plan: Plan
    tasks: Mapping[str, KabupatenTask]
    firsts: Mapping[str, Stage]
    expect: Expectations
    at: int
    kept_routes: list[Route] = field(default_factory=list)
    planned: dict[str, list[Route]] = field(default_factory=lambda: defaultdict(list))
    missed_of: dict[str, list[Missed]] = field(default_factory=dict)
    kept_unserved: dict[str, Unserved] = field(default_factory=dict)  # of kabupaten not planned again
    seconds: dict[str, Stage] = field(default_factory=dict)
    replanned: set[str] = field(default_factory=set)

    def plan_first(self, change: Change, backend: Backend, progress: Progress | None) -> None:
        """Plan the dropped trips of every kabupaten whose goods moved (or that an opened leg may help)."""
        to_plan = []
        for code, first in sorted(self.firsts.items()):
            retry = bool(change.unblock) and any(u.kabupaten_code == code for u in self.plan.unserved)
            goods_moved = first.dropped or any(c.returned or c.stranded for c in first.continued)
            if (goods_moved or retry) and first.left:
                to_plan.append(code)
                continue
            for u in self.plan.unserved:
                if u.kabupaten_code == code:
                    self.kept_unserved.setdefault(u.node_id, u)
            self.missed_of[code] = list(first.lost)
        results = run_tasks([self.firsts[c].task for c in to_plan], backend, progress)
        by_code = {r.kabupaten_code: r for r in results}
        self.replanned |= set(by_code)
        for code, first in sorted(self.firsts.items()):
            res = by_code.get(code)
            self.planned[code] = [trip_route(t, code, self.expect.start) for t in res.trips] if res else []
            if res:
                self.missed_of[code] = merge_unserved([], first, res.unserved)
            second = first.held and second_stage(
                self.tasks[code], first, self.planned[code], self.missed_of[code], self.expect, self.at
            )
            if not second:
                self.kept_routes += first.all_kept
            else:
                self.seconds[code] = second

    def plan_second(self, backend: Backend, progress: Progress | None) -> None:
        """Plan again the PPKs whose goods the first stage brings later than their held trips start."""
        results = run_tasks([s.task for s in self.seconds.values()], backend, progress)
        by_code = {r.kabupaten_code: r for r in results}
        self.replanned |= set(by_code)
        for code, second in self.seconds.items():
            res = by_code[code]
            self.kept_routes += second.kept
            self.planned[code] = [trip_route(t, code, self.expect.start) for t in res.trips]
            self.missed_of[code] = merge_unserved(self.missed_of[code], second, res.unserved)

    def unserved(self) -> list[Unserved]:
        out = dict(self.kept_unserved)
        for code, missed in sorted(self.missed_of.items()):
            for m in missed:
                out[m.node_id] = Unserved(
                    node_id=m.node_id, kabupaten_code=code, reason=m.reason, detail=m.detail
                )
        return [out[n] for n in sorted(out)]


def replan(
    plan: Plan,
    problem: Problem,
    change: Change,
    settings: SearchSettings,
    backend: Backend = Backend(),
    *,
    based_on: str = "",
    based_on_hash: str = "",
    scenario: ScenarioRef | None = None,
    progress: Progress | None = None,
) -> ReplanResult:
    """The plan after `change`, with everything before `change.at` kept.

    `problem`: the scenario with the change applied (apply_change); `settings`: the search settings of a full
    solve (a kabupaten re-planned gets the share of its time limit that is left to plan); `backend`: where the
    kabupaten are planned again. `based_on`, `based_on_hash`: path and sha256 of the plan file (default: the
    hash of `plan` as JSON). `scenario`: the scenario the new plan is made for when it is not the plan's
    (`--force-scenario`). Returns the new plan with the kabupaten planned again and the trips under way."""
    inputs, expect = problem.inputs, problem.expect
    at = expect.minute(change.at)
    tasks = {t.kabupaten_code: t for t in kabupaten_tasks(problem, settings)}
    firsts = {
        code: first_stage(tasks[code], [r for r in plan.routes if r.kabupaten_code == code], expect, at)
        for code in sorted(tasks)
    }
    continued = [c for code in sorted(firsts) for c in firsts[code].continued]
    staged = _StagedReplan(plan, tasks, firsts, expect, at)
    staged.plan_first(change, backend, progress)
    staged.plan_second(backend, progress)
    routes = sorted(
        [*staged.kept_routes, *(r for code in sorted(staged.planned) for r in staged.planned[code])],
        key=lambda r: (r.kabupaten_code, r.tier, r.vehicle_id, r.trip),
    )
    unserved = staged.unserved()
    replanned = staged.replanned
    scenario_changed = scenario is not None and scenario.hash != plan.scenario.hash
    new = plan.model_copy(
        update={
            "scenario": scenario or plan.scenario,
            "blocked_legs": sorted(
                set(blocked_after(plan, change))
                | (set(inputs.scenario.blocked_legs) if scenario_changed else set())
            ),
            "routes": routes,
            "unserved": unserved,
            "replan": Replan(
                based_on=based_on,
                based_on_hash=based_on_hash or content_hash(to_json(plan)),
                at=change.at,
                blocked=sorted(change.block),
                unblocked=sorted(change.unblock),
                replanned_kabupaten=sorted(replanned),
                based_on_scenario_hash=plan.scenario.hash if scenario_changed else None,
            ),
        }
    )
    return ReplanResult(with_kpis(new, expect), tuple(sorted(replanned)), tuple(continued))


# ---------------------------------------------------------------- what changed


def _deliveries(plan: Plan) -> dict[str, list[tuple[str, datetime]]]:
    out: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for route in plan.routes:
        for stop in route.stops:
            if stop.deliver:
                out[stop.node_id].append((route.vehicle_id, stop.arrival))
    return out


def plan_diff(old: Plan, new: Plan, names: Mapping[str, str] | None = None) -> dict:
    """Stops that changed vehicle or time, km added per mode, PPS newly unserved (and why) or served again."""
    names = names or {}
    before, after = _deliveries(old), _deliveries(new)
    changed = []
    for node in sorted(set(before) | set(after)):
        a, b = sorted(before.get(node, [])), sorted(after.get(node, []))
        if a == b:
            continue
        old_at = max((t for _, t in a), default=None)
        new_at = max((t for _, t in b), default=None)
        changed.append(
            {
                "node_id": node,
                "name": names.get(node, ""),
                "old_vehicles": sorted({v for v, _ in a}),
                "new_vehicles": sorted({v for v, _ in b}),
                "old_arrival": old_at.isoformat() if old_at else None,
                "new_arrival": new_at.isoformat() if new_at else None,
                "shift_min": round((new_at - old_at).total_seconds() / 60) if old_at and new_at else None,
            }
        )
    old_unserved = {u.node_id: u for u in old.unserved}
    new_unserved = {u.node_id: u for u in new.unserved}
    old_km = old.kpis.total.km_by_mode if old.kpis else {}
    new_km = new.kpis.total.km_by_mode if new.kpis else {}
    return {
        "based_on": new.replan.based_on if new.replan else "",
        "at": new.replan.at.isoformat() if new.replan else None,
        "blocked": new.replan.blocked if new.replan else [],
        "unblocked": new.replan.unblocked if new.replan else [],
        "replanned_kabupaten": new.replan.replanned_kabupaten if new.replan else [],
        "km_added_by_mode": {
            m: round(new_km.get(m, 0.0) - old_km.get(m, 0.0), 1) for m in sorted(set(old_km) | set(new_km))
        },
        "changed_stops": changed,
        "newly_unserved": [
            {"node_id": n, "name": names.get(n, ""), "reason": u.reason, "detail": u.detail}
            for n, u in sorted(new_unserved.items())
            if n not in old_unserved
        ],
        "served_again": sorted(n for n in old_unserved if n not in new_unserved),
        "stranded": [
            {"vehicle_id": r.vehicle_id, "trip": r.trip, "at": r.stranded_at, "base": r.base}
            for r in new.routes
            if r.stranded_at
        ],
    }


def changed_trips(old: Plan, new: Plan) -> set[tuple[str, int]]:
    """(vehicle id, trip) of the new plan's routes that are not in the old plan as they are."""
    previous = {(r.vehicle_id, r.trip): r for r in old.routes}
    return {(r.vehicle_id, r.trip) for r in new.routes if previous.get((r.vehicle_id, r.trip)) != r}
