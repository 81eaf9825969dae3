"""Re-check a plan against the network and the demand directly, without the solver or its matrices.

The validator believes nothing the plan says about itself. It checks the scenario hash and the calendar, that
every PPS and PPK of the scenario is served or listed unserved (an unserved stop is a violation unless the
network and the fleet show it cannot be served, or the caller allows unserved stops), and recomputes the KPIs.
Every route must follow open legs of its vehicle's modes from stop to stop, in order, from its base back to its
base; respect capacity, operating hours, handling times and deadlines; and every PPS must receive exactly its
items, every PPK and port must hand on exactly what it received, and no vehicle may leave a transfer point with
goods that have not arrived there yet. A re-plan is checked against the plan it is based on (by its hash): its
`at`, blocked and unblocked legs are believed only when that plan is given, and the stops before `at` must be
those of that plan, as they were.

Nothing here imports the solver (OR-Tools, PyVRP): `planner validate` runs on any machine that reads plans.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from planner.catalog import Item, kit_marker
from planner.goods import GoodsLedger, add_goods, goods_weight, subtract_goods
from planner.kpis import plan_kpis
from planner.network import Network
from planner.nodes import is_hub, is_ppk, is_pps, is_warehouse, kabupaten_of
from planner.paths import leg_minutes, leg_travel_hours, shortest_paths
from planner.plan import Plan, Route, content_hash, to_json
from planner.vehicles import (
    Assignment,
    Driving,
    LegTime,
    VehicleSpec,
    add_working_minutes,
    after_stop,
    arrival_minute,
    drive_legs,
    handling_minutes,
    is_open,
    kits_handed_over,
    local_day,
)

if TYPE_CHECKING:
    from planner.scenario import ScenarioInputs

TOLERANCE_MIN = 1  # rounding of travel times to whole minutes
LATEST_RETURN = timedelta(days=7)  # assumption: no trip is still out a week after the PPS deadline
KPI_TOLERANCE = 1e-6  # KPIs are rounded the same way each time: only float noise is tolerated
MAX_KPI_PROBLEMS = 8


@dataclass(frozen=True)
class Expectations:
    """What the plan must achieve, read from the scenario: network, fleet, goods and calendar.

    `kabupaten` (the scenario's kabupaten codes), `scenario_hash` (sha256 of the scenario file),
    `blocked_legs` (the scenario's) and `vehicle_kabupaten` (vehicle id -> the kabupaten it serves) are empty
    when unknown: then the kabupaten come from the goods, and the hash and blocked legs are not checked."""

    network: Network
    vehicles: Mapping[str, VehicleSpec]
    units: Mapping[str, Item]
    pps_goods: Mapping[str, Mapping[str, int]]
    ppk_own: Mapping[str, Mapping[str, int]]
    pps_ppk: Mapping[str, str]
    start: datetime
    ppk_deadline: datetime
    pps_deadline: datetime
    kabupaten: tuple[str, ...] = ()
    scenario_hash: str = ""
    blocked_legs: tuple[str, ...] = ()
    vehicle_kabupaten: Mapping[str, str] = field(default_factory=dict)
    pps_kits: Mapping[str, tuple[Mapping[str, int], ...]] = field(default_factory=dict)  # TPS 1 first
    kit_marker: tuple[str, int] | None = None  # (item, units per kit): counts the kits in a delivery
    assigned: Mapping[str, Assignment] = field(
        default_factory=dict
    )  # PPS -> its assign rule (no PPK between)

    @property
    def start_minute_of_day(self) -> int:
        return self.start.hour * 60 + self.start.minute

    def minute(self, when: datetime) -> int:
        return round((when - self.start).total_seconds() / 60)

    def at(self, minute: int) -> datetime:
        return self.start + timedelta(minutes=int(minute))

    def deadline_of(self, node_id: str) -> datetime | None:
        """The calendar deadline of a PPS or PPK node; None for a warehouse or port."""
        if is_pps(node_id):
            return self.pps_deadline
        if is_ppk(node_id):
            return self.ppk_deadline
        return None

    def kabupaten_codes(self) -> tuple[str, ...]:
        """The scenario's kabupaten, or those of its PPK and PPS when not given."""
        if self.kabupaten:
            return tuple(self.kabupaten)
        return tuple(sorted({kabupaten_of(n) for n in (*self.pps_goods, *self.ppk_own)}))


def expectations(inputs: ScenarioInputs) -> Expectations:
    """Network, fleet, goods per PPS and PPK, calendar and file hash of a scenario, as plain data."""
    from planner.demand import pps_kits
    from planner.plan import file_hash

    types = inputs.fleet.types
    vehicles = {
        v.vehicle_id: VehicleSpec(v.vehicle_id, v.base, types[v.type_id]) for v in inputs.fleet.vehicles
    }
    item_ids = [i.id for i in inputs.items]
    pps = inputs.demand.pps
    ppk = inputs.demand.ppk

    def goods(row) -> dict[str, int]:
        return {i: int(row[i]) for i in item_ids if int(row[i])}

    scenario = inputs.scenario
    calendar = scenario.calendar
    return Expectations(
        network=inputs.network,
        vehicles=vehicles,
        units={i.id: i for i in inputs.items},
        pps_goods={row["node_id"]: goods(row) for _, row in pps.iterrows()},
        ppk_own={row["node_id"]: goods(row) for _, row in ppk.iterrows()},
        pps_ppk={row["node_id"]: f"ppk:{row['kecamatan_code']}" for _, row in pps.iterrows()},
        start=calendar.start_local,
        ppk_deadline=calendar.ppk_deadline_local,
        pps_deadline=calendar.pps_deadline_local,
        kabupaten=tuple(inputs.kabupaten),
        scenario_hash=file_hash(scenario.source) if scenario.source else "",
        blocked_legs=tuple(scenario.blocked_legs),
        vehicle_kabupaten={v.vehicle_id: v.kabupaten_code for v in inputs.fleet.vehicles},
        pps_kits=pps_kits(inputs.demand),
        kit_marker=kit_marker(inputs.items, inputs.demand.elections),
        assigned={p: a for p, a in scenario.assignments().items() if kabupaten_of(p) in inputs.kabupaten},
    )


@dataclass(frozen=True)
class Previous:
    """The plan a re-plan says it is based on, as the caller found it; `file_hash` of its file when read from one."""

    plan: Plan
    file_hash: str = ""

    def hashes(self) -> set[str]:
        return {h for h in (self.file_hash, content_hash(to_json(self.plan))) if h}


@dataclass(frozen=True)
class Verified:
    """What the validator believes about a re-plan after checking it against the previous plan.

    `at`: the change, in minutes after the start (None: not a verified re-plan); `unblocked`: legs it may open
    again; `blocked`: legs the change closed (open before `at`); `frozen_legs`: per (vehicle id, trip), how many leading legs are the previous plan's, as driven."""

    at: int | None = None
    unblocked: tuple[str, ...] = ()
    blocked: frozenset[str] = frozenset()
    frozen_legs: Mapping[tuple[str, int], int] = field(default_factory=dict)


def validate_plan(
    plan: Plan,
    expect: Expectations,
    *,
    previous: Previous | Plan | None = None,
    allow_unserved: bool = False,
) -> list[str]:
    """All violations of the plan, as sentences that name the vehicle, stop, leg or node; [] if valid.

    `previous`: the plan a re-plan is based on (without it a re-plan's own record of the change is not
    believed). `allow_unserved`: accept every unserved stop as listed; otherwise a stop may be unserved only
    when no vehicle of its kabupaten can reach it and come back, directly or by way of ports."""
    if isinstance(previous, Plan):
        previous = Previous(previous)
    problems = _check_header(plan, expect)
    verified, replan_problems = _check_replan(plan, expect, previous)
    problems += replan_problems
    network, leg_problems = _plan_network(plan, expect, verified)
    problems += leg_problems
    # a vehicle's trips in time order, so that the driver's account runs on from one trip to the next
    order = sorted(
        range(len(plan.routes)),
        key=lambda i: (plan.routes[i].vehicle_id, [s.arrival for s in plan.routes[i].stops[:1]], i),
    )
    accounts: dict[str, tuple[int, Driving]] = {}
    found = {i: _check_route(plan.routes[i], network, expect, verified, accounts) for i in order}
    structural = [p for i in range(len(plan.routes)) for p in found[i]]
    problems += structural
    problems += _check_trips_do_not_overlap(plan)
    problems += _check_unserved(plan, expect, network, allow_unserved)
    problems += _check_balances(plan, expect)
    problems += _check_assignments(plan, expect)
    problems += _check_kits(plan, expect)
    if not structural:
        problems += _check_kpis(plan, expect)
    return problems


def _label(route: Route) -> str:
    return f"{route.vehicle_id} trip {route.trip}"


# ---------------------------------------------------------------- what the plan says about itself


def _check_header(plan: Plan, expect: Expectations) -> list[str]:
    """Scenario hash, calendar, kabupaten of routes and the scenario's blocked legs."""
    out = []
    if expect.scenario_hash and plan.scenario.hash != expect.scenario_hash:
        out.append(
            f"scenario.hash {plan.scenario.hash} is not the hash of the scenario file given "
            f"({expect.scenario_hash}): the plan was made for another scenario or another version of it"
        )
    for name, want in (
        ("start", expect.start),
        ("ppk_deadline", expect.ppk_deadline),
        ("pps_deadline", expect.pps_deadline),
    ):
        got = getattr(plan.calendar, name)
        if got != want:
            out.append(f"calendar.{name} is {got.isoformat()} but the scenario says {want.isoformat()}")
    zone = getattr(expect.start.tzinfo, "key", None)  # the scenario's ZoneInfo
    if zone and plan.calendar.timezone != zone:
        out.append(f"calendar.timezone is {plan.calendar.timezone!r} but the scenario says {zone!r}")
    codes = set(expect.kabupaten_codes())
    for code in sorted({r.kabupaten_code for r in plan.routes} - codes):
        out.append(f"routes of kabupaten {code}, which is not in the scenario")
    for route in plan.routes:
        owner = expect.vehicle_kabupaten.get(route.vehicle_id)
        if owner and owner != route.kabupaten_code:
            out.append(f"{_label(route)}: listed for kabupaten {route.kabupaten_code}, but it serves {owner}")
    return out


def _check_replan(plan: Plan, expect: Expectations, previous: Previous | None) -> tuple[Verified, list[str]]:
    """The re-plan record checked against the previous plan; only what holds is believed."""
    record = plan.replan
    if record is None:
        return Verified(), []
    if previous is None:
        return Verified(), [
            f"replan: based on {record.based_on or '(no file)'}, which is not given or not found (give it with "
            "--previous): its `at`, blocked and unblocked legs cannot be checked, so they are not believed"
        ]
    old = previous.plan
    if record.based_on_hash not in previous.hashes():
        return Verified(), [
            f"replan.based_on_hash {record.based_on_hash} is not the hash of the previous plan given "
            f"({', '.join(sorted(previous.hashes()))}): it re-plans another plan"
        ]
    out = []
    if old.scenario.hash != plan.scenario.hash and record.based_on_scenario_hash != old.scenario.hash:
        out.append(
            f"scenario.hash {plan.scenario.hash} differs from the previous plan's ({old.scenario.hash}) and "
            "the re-plan does not record the change of scenario"
        )
    if old.calendar != plan.calendar:
        out.append("calendar: differs from the previous plan's")
    at = expect.minute(record.at)
    if not expect.start <= record.at < expect.pps_deadline:
        out.append(f"replan.at {record.at.isoformat()} is outside the calendar (start to PPS deadline)")
        return Verified(), out
    never_blocked = sorted(set(record.unblocked) - set(old.blocked_legs))
    out += [f"replan.unblocked: {leg} was not blocked in the previous plan" for leg in never_blocked]
    want = (set(old.blocked_legs) | set(record.blocked)) - set(record.unblocked)
    if record.based_on_scenario_hash:  # re-planned on another scenario: its blocked legs too
        want |= set(expect.blocked_legs)
    if set(plan.blocked_legs) != want:
        missing, extra = sorted(want - set(plan.blocked_legs)), sorted(set(plan.blocked_legs) - want)
        out.append(
            "blocked_legs: not the previous plan's with the change applied"
            + (f" (missing {', '.join(missing[:5])})" if missing else "")
            + (f" (not blocked by the change: {', '.join(extra[:5])})" if extra else "")
        )
    past, frozen = _check_past(plan, old, record.at)
    out += past
    unblocked = tuple(sorted(set(record.unblocked) & set(old.blocked_legs)))
    closed = frozenset(set(record.blocked) - set(old.blocked_legs))
    return Verified(at=at, unblocked=unblocked, blocked=closed, frozen_legs=frozen), out


def _check_past(plan: Plan, old: Plan, at: datetime) -> tuple[list[str], dict[tuple[str, int], int]]:
    """Stops before `at` must be the previous plan's, byte for byte; (problems, verified leading legs per trip)."""
    before = {(r.vehicle_id, r.trip): r for r in old.routes}
    after = {(r.vehicle_id, r.trip): r for r in plan.routes}
    out = []
    for key, route in sorted(before.items()):
        past = [i for i, s in enumerate(route.stops) if s.arrival < at]
        new = after.get(key)
        if past and new is None:
            out.append(f"{_label(route)}: under way or done before replan.at, but the re-plan drops it")
            continue
        for i in past:
            if i >= len(new.stops) or new.stops[i].model_dump_json() != route.stops[i].model_dump_json():
                out.append(
                    f"{_label(route)}: stop {i} ({route.stops[i].node_id}) is before replan.at, but differs "
                    "from the previous plan (the past is kept as driven)"
                )
                break
    for key, route in sorted(after.items()):
        if key not in before and any(s.arrival < at for s in route.stops):
            out.append(f"{_label(route)}: has stops before replan.at that the previous plan does not have")
    frozen = {}
    for key, route in after.items():
        if key in before:
            n = 0
            for a, b in zip(route.legs, before[key].legs, strict=False):
                if a != b:
                    break
                n += 1
            frozen[key] = n
    return out, frozen


def _plan_network(plan: Plan, expect: Expectations, verified: Verified) -> tuple[Network, list[str]]:
    """The scenario's network with the verified re-plan's legs opened again and the plan's blocked legs closed."""
    network = expect.network
    known = set(network.legs.index)
    out = [
        f"blocked_legs: {leg} is not a leg of the network" for leg in plan.blocked_legs if leg not in known
    ]
    opened = set(verified.unblocked)
    dropped = sorted(set(expect.blocked_legs) - set(plan.blocked_legs) - opened)
    out += [f"blocked_legs: the scenario's blocked leg {leg} is missing" for leg in dropped]
    if verified.unblocked:
        network = network.unblocked([leg for leg in verified.unblocked if leg in known])
    closed = [leg for leg in plan.blocked_legs if leg in known]
    if closed:
        network = network.blocked(closed)
    return network, out


# ---------------------------------------------------------------- one route


def _check_route(
    route: Route,
    network: Network,
    expect: Expectations,
    verified: Verified,
    accounts: dict[str, tuple[int, Driving]] | None = None,
) -> list[str]:
    label = _label(route)
    spec = expect.vehicles.get(route.vehicle_id)
    if spec is None:
        return [f"{label}: vehicle {route.vehicle_id} is not in the scenario's fleet"]
    out = []
    if spec.type_id != route.vehicle_type:
        out.append(f"{label}: vehicle type {route.vehicle_type} but the fleet says {spec.type_id}")
    if spec.base != route.base:
        out.append(f"{label}: base {route.base} but the vehicle is based at {spec.base}")
    end = route.stranded_at or route.base
    if route.stops[0].node_id != route.base or route.stops[-1].node_id != end:
        out.append(f"{label}: must start at its base {route.base} and end at {end}")
        return out
    out += _check_under_way(route, network, spec, expect, verified)
    out += _check_path(route, network, spec, expect, verified, accounts if accounts is not None else {})
    out += _check_loads(route, spec, expect)
    return out


def _check_under_way(
    route: Route, network: Network, spec: VehicleSpec, expect: Expectations, verified: Verified
) -> list[str]:
    """`stranded_at` and `returned` are set only by a re-plan, for a trip under way at its `at`; a stranded
    vehicle has no open way home."""
    if not route.stranded_at and not route.returned:
        return []
    label = _label(route)
    what = "stranded_at" if route.stranded_at else "returned"
    if verified.at is None:
        return [f"{label}: {what} is set, but only a re-plan (checked against its previous plan) sets it"]
    if expect.minute(route.stops[0].arrival) >= verified.at:
        return [f"{label}: {what} is set, but the trip had not begun (at its base) at replan.at"]
    if route.stranded_at:
        if route.returned:
            return [f"{label}: stranded at {route.stranded_at}, so it cannot bring goods back to its base"]
        if route.stranded_at not in network.nodes.index:
            return [f"{label}: stranded_at {route.stranded_at} is not a node of the network"]
        home = shortest_paths(network, spec.kind.speeds, sources=[route.stranded_at])
        if math.isfinite(home.hours_between(route.stranded_at, route.base)):
            return [
                f"{label}: stranded_at {route.stranded_at}, but open legs lead from there back to "
                f"{route.base} ({home.km_between(route.stranded_at, route.base):.1f} km)"
            ]
    return []


def _check_path(
    route: Route,
    network: Network,
    spec: VehicleSpec,
    expect: Expectations,
    verified: Verified = Verified(),
    accounts: dict[str, tuple[int, Driving]] | None = None,
) -> list[str]:
    """Walk the legs; the stops must come in order along the walk, and the times must allow the travel.

    In a verified re-plan, a leg the change closed may be on the route if the vehicle started on it before the
    change and it is one of the route's leading legs that are the previous plan's (driven as planned)."""
    label, kind, legs = _label(route), spec.kind, network.legs
    hours, day = kind.operating_hours, expect.start_minute_of_day
    out: list[str] = []
    position = route.base
    next_stop = 1
    travel: list[list[tuple[str, float]]] = [[] for _ in route.stops]  # (leg, minutes) before stop i
    for index, leg_id in enumerate(route.legs):
        if leg_id not in legs.index:
            out.append(f"{label}: leg {leg_id} does not exist in the network")
            return out
        leg = legs.loc[leg_id]
        if leg["status"] != "open":
            departed = expect.minute(route.stops[next_stop - 1].departure)
            before = sum(m for _, m in travel[next_stop])
            started = add_working_minutes(departed, int(before), hours, day)
            driven = verified.frozen_legs.get((route.vehicle_id, route.trip), 0)
            frozen = verified.at is not None and started < verified.at and index < driven
            if not (frozen and leg_id in verified.blocked):
                out.append(f"{label}: leg {leg_id} is blocked")
        if leg["mode"] not in kind.modes:
            out.append(f"{label}: leg {leg_id} is {leg['mode']}, not allowed for a {kind.type_id}")
        elif leg_travel_hours(leg, kind.speeds) is None and kind.speeds.speed_on(leg) > 0:
            out.append(
                f"{label}: leg {leg_id} takes {float(leg['length_km']) / kind.speeds.speed_on(leg) * 60:.0f} "
                f"min, longer than a {kind.type_id} may travel without a stop ({kind.speeds.longest_leg_min:.0f} "
                "min, its operating day): it would spend a night between two nodes"
            )
        if leg["from_node"] == position:
            position = leg["to_node"]
        elif leg["to_node"] == position and leg["mode"] != "river":
            position = leg["from_node"]
        else:
            out.append(f"{label}: leg {leg_id} does not start at {position}")
            return out
        travel[next_stop].append((str(leg_id), leg_minutes(leg, kind.speeds)))
        while next_stop < len(route.stops) - 1 and route.stops[next_stop].node_id == position:
            next_stop += 1
    if next_stop != len(route.stops) - 1 or position != (route.stranded_at or route.base):
        missing = route.stops[next_stop].node_id
        out.append(f"{label}: the legs do not pass its stops in order (first missed: {missing})")
        return out
    return out + _check_times(route, spec, expect, travel, accounts if accounts is not None else {})


def stop_handling(route: Route, i: int, kind, expect: Expectations) -> int:
    """Minutes of work at stop i of a route: loading at the base, the BAST record plus the time per TPS kit
    handed over at a delivery, unloading what comes back (`returned`) at the base, else none."""
    stop = route.stops[i]
    if i == 0:
        return kind.load_min
    if stop.deliver:
        return handling_minutes(kind, kits_handed_over(stop.deliver, expect.kit_marker, stop.tps_kits))
    return kind.unload_min if i == len(route.stops) - 1 and route.returned else 0


def _check_times(
    route: Route,
    spec: VehicleSpec,
    expect: Expectations,
    travel: list[list[tuple[str, float]]],
    accounts: dict[str, tuple[int, Driving]],
) -> list[str]:
    label, kind = _label(route), spec.kind
    hours, day = kind.operating_hours, expect.start_minute_of_day
    out = []
    if route.stops[0].arrival < expect.start:
        out.append(f"{label}: starts at {route.stops[0].arrival.isoformat()}, before the calendar start")
    if route.stops[-1].arrival > expect.pps_deadline + LATEST_RETURN:
        out.append(
            f"{label}: ends at {route.stops[-1].arrival.isoformat()}, more than {LATEST_RETURN.days} days after "
            "the PPS deadline"
        )
        return out
    last = len(route.stops) - 1
    since, driving = accounts.get(route.vehicle_id, (expect.minute(route.stops[0].arrival), None))
    reached = since
    for i, stop in enumerate(route.stops):
        arrival, departure = expect.minute(stop.arrival), expect.minute(stop.departure)
        returns = i == last and bool(route.returned)
        if departure < arrival:
            out.append(
                f"{label}: at {stop.node_id} departure {stop.departure} is before arrival {stop.arrival}"
            )
        handling = stop_handling(route, i, kind, expect)
        if departure + TOLERANCE_MIN < add_working_minutes(arrival, handling, hours, day):
            out.append(f"{label}: at {stop.node_id} leaves before {handling} min of handling are done")
        for what, t in (("arrives", arrival), ("leaves", departure)):
            if (stop.deliver or i == 0 or returns) and not is_open(t, hours, day):
                out.append(
                    f"{label}: {what} {stop.node_id} at {stop.arrival:%d %b %H:%M}, outside operating hours"
                )
        if i > 0:
            problems, reached, driving = _check_segment(route, i, kind, expect, travel[i], driving)
            out += problems
        driving = after_stop(kind, driving or Driving(), reached if i else since, departure, handling)
        deadline = expect.deadline_of(stop.node_id)
        if stop.deliver and deadline is not None and arrival > expect.minute(deadline):
            out.append(
                f"{label}: delivers at {stop.node_id} at {stop.arrival:%d %b %H:%M}, after the deadline"
            )
    accounts[route.vehicle_id] = (reached, driving or Driving())
    return out


_REST_REASON = {
    "night": "it does not fit before closing, and a vehicle with goods spends the night at a node, never between two",
    "limit": "it would take the day's driving past {limit} min",
    "break": "{after} min of driving since the last break call for a {pause}-min break at the node first",
}


def _check_segment(
    route: Route,
    i: int,
    kind,
    expect: Expectations,
    travel: list[tuple[str, float]],
    driving: Driving | None,
) -> tuple[list[str], int, Driving]:
    """The legs to stop i laid out by the driving rules (vehicles.drive_legs) from the departure at stop i - 1:
    the stop may not be reached earlier. Returns the problems, the earliest arrival and the driver's account."""
    label, day_start = _label(route), expect.start_minute_of_day
    previous = expect.minute(route.stops[i - 1].departure)
    laid, after = drive_legs(kind, previous, [m for _, m in travel], day_start, driving)
    earliest = arrival_minute(previous, laid)
    out = []
    arrival = expect.minute(route.stops[i].arrival)
    if arrival + TOLERANCE_MIN < earliest:
        where = f"{label}: reaches {route.stops[i].node_id} at {route.stops[i].arrival:%d %b %H:%M}, but"
        total = sum(m for _, m in travel)
        waits = [(j, leg, t) for j, ((leg, _), t) in enumerate(zip(travel, laid, strict=True)) if t.rest]
        if not waits:
            out.append(f"{where} the travel takes {total:.0f} min of operating time from the previous stop")
        else:
            j, leg, t = waits[0]
            before = laid[j - 1].end if j else previous  # the day that could not take the leg
            why = _REST_REASON[t.rest].format(
                limit=kind.max_driving_min_per_day, after=kind.break_after_driving_min, pause=kind.break_min
            )
            out.append(
                f"{where} by the driving rules its {total:.0f} min of travel end at "
                f"{expect.at(earliest):%d %b %H:%M}: leg {leg} on {_day_text(expect, t, before)} waits at its "
                f"node, as {why}"
            )
    out += _overrun(route, kind, expect, travel, laid)
    return out, earliest, after


def _day_text(expect: Expectations, t: LegTime, before: float) -> str:
    """The local day a leg waits on: for the night or the day's limit, the day driven up to it (`before`: the
    minute the vehicle reached its node); for a break, the day of the leg."""
    return f"{expect.at(int(before if t.rest in ('night', 'limit') else t.start)):%d %b}"


def _overrun(route: Route, kind, expect: Expectations, travel: list[tuple[str, float]], laid) -> list[str]:
    """A leg under way at closing: a night between two nodes (only a leg longer than the operating day)."""
    hours = kind.operating_hours
    if hours is None:
        return []
    out = []
    for (leg, _), t in zip(travel, laid, strict=True):
        day = local_day(t.start, expect.start_minute_of_day)
        closing = day * 1440 + hours[1] - expect.start_minute_of_day
        if t.end > closing + TOLERANCE_MIN:
            out.append(
                f"{_label(route)}: leg {leg} is under way at closing on {expect.at(closing):%d %b %H:%M}: the "
                "night would be spent between two nodes"
            )
    return out


def _check_loads(route: Route, spec: VehicleSpec, expect: Expectations) -> list[str]:
    """What a trip loads is what it delivers, plus what it brings back (`returned`) or, stranded, still carries."""
    label, kind = _label(route), spec.kind
    out = []
    unknown = {i for s in route.stops for i in (*s.deliver, *s.load)} | set(route.returned)
    unknown -= set(expect.units)
    if unknown:
        return [f"{label}: unknown item(s) {', '.join(sorted(unknown))}"]
    if any(
        q < 0 for s in route.stops for q in (*s.deliver.values(), *s.load.values(), *route.returned.values())
    ):
        return [f"{label}: negative quantity"]
    if any(s.load for s in route.stops[1:]):
        out.append(f"{label}: loads goods away from its base")
    loaded = add_goods(route.stops[0].load)
    delivered = add_goods(*(s.deliver for s in route.stops), route.returned)
    if route.stranded_at:
        if any(q > loaded.get(i, 0) for i, q in delivered.items()):
            out.append(f"{label}: delivers more than it loads at {route.base}")
    elif loaded != delivered:
        out.append(
            f"{label}: loads {sum(loaded.values())} units at {route.base} but delivers "
            f"{sum(delivered.values())}" + (" (with what it brings back)" if route.returned else "")
        )
    kg, m3 = goods_weight(loaded, expect.units)
    if kg > kind.capacity_kg * 1.000001 or m3 > kind.capacity_m3 * 1.000001:
        out.append(
            f"{label}: carries {kg:,.0f} kg / {m3:.2f} m3, over the capacity of a {kind.type_id} "
            f"({kind.capacity_kg:,.0f} kg / {kind.capacity_m3:.2f} m3)"
        )
    return out


def _check_trips_do_not_overlap(plan: Plan) -> list[str]:
    by_vehicle: dict[str, list[Route]] = defaultdict(list)
    for route in plan.routes:
        by_vehicle[route.vehicle_id].append(route)
    out = []
    for vehicle, routes in sorted(by_vehicle.items()):
        trips = [r.trip for r in routes]
        for trip in sorted({t for t in trips if trips.count(t) > 1}):
            out.append(f"{vehicle}: trip {trip} is listed {trips.count(trip)} times")
        routes.sort(key=lambda r: r.stops[0].arrival)
        for a, b in zip(routes, routes[1:], strict=False):
            if b.stops[0].arrival < a.stops[-1].arrival:
                out.append(f"{vehicle}: trip {b.trip} starts before trip {a.trip} is back at base")
    return out


# ---------------------------------------------------------------- unserved stops


def _check_unserved(plan: Plan, expect: Expectations, network: Network, allow_unserved: bool) -> list[str]:
    """Each unserved entry names a PPS or PPK of the scenario once; unless `allow_unserved`, the fleet must be
    unable to reach it and come back (then its reason cannot be `too_late` or `capacity` either)."""
    out = []
    seen: set[str] = set()
    reach = _FleetReach(expect, network)
    for u in plan.unserved:
        node = u.node_id
        if node in seen:
            out.append(f"{node}: listed unserved more than once")
            continue
        seen.add(node)
        if node not in expect.pps_goods and node not in expect.ppk_own:
            out.append(f"{node}: listed unserved, but it is not a PPS or PPK of the scenario")
            continue
        if kabupaten_of(node) != u.kabupaten_code:
            out.append(
                f"{node}: listed unserved in kabupaten {u.kabupaten_code}, but it is in {kabupaten_of(node)}"
            )
        if allow_unserved:
            continue
        who = reach.who_reaches(node)
        if who:
            out.append(
                f"{node}: listed unserved ({u.reason}), but {who} can reach it and come back over open legs: "
                "it must be served (or accept unserved stops with --allow-unserved)"
            )
        elif u.reason in ("too_late", "capacity"):
            out.append(
                f"{node}: listed unserved for {u.reason}, but no vehicle of its kabupaten can reach it and come "
                "back at all: the reason is unreachable or no_vehicle"
            )
    return out


class _FleetReach:
    """Where the goods of a kabupaten can get to: from the warehouse (for a PPK) or its PPK (for a PPS), by
    every vehicle based at a node the goods can reach, out and back over open legs of its modes."""

    def __init__(self, expect: Expectations, network: Network):
        self.expect, self.network = expect, network
        legs = network.legs.rename(columns={"from_node": "to_node", "to_node": "from_node"})
        self.reverse = replace(network, legs=legs)
        self.cache: dict[str, dict[str, str]] = {}

    def who_reaches(self, node: str) -> str:
        """'<vehicle> from <base>' that can get there and back with the node's goods, or '' if none can."""
        code = kabupaten_of(node)
        origin = self.network.warehouse_of(code)
        if is_pps(node):
            ppk = self.expect.pps_ppk.get(node, "")
            if not self.reached_from(origin).get(ppk):
                return ""
            origin = ppk
        return self.reached_from(origin).get(node, "")

    def reached_from(self, origin: str) -> dict[str, str]:
        if origin not in self.cache:
            self.cache[origin] = self._closure(origin, kabupaten_of(origin))
        return self.cache[origin]

    def _closure(self, origin: str, code: str) -> dict[str, str]:
        nodes = self.network.nodes
        if origin not in nodes.index:
            return {}
        fleet: dict[str, dict[str, VehicleSpec]] = defaultdict(dict)
        for vehicle_id, spec in sorted(self.expect.vehicles.items()):
            owner = self.expect.vehicle_kabupaten.get(vehicle_id) or kabupaten_of(spec.base)
            if owner == code:
                fleet[spec.base].setdefault(spec.type_id, spec)
        reached = {origin: "its origin"}
        todo = [origin]
        while todo:
            base = todo.pop()
            for spec in fleet.get(base, {}).values():
                there = shortest_paths(self.network, spec.kind.speeds, sources=[base]).hours[0]
                back = shortest_paths(self.reverse, spec.kind.speeds, sources=[base]).hours[0]
                for index in np.flatnonzero(np.isfinite(there) & np.isfinite(back)):
                    node = nodes.index[index]
                    if node not in reached:
                        reached[node] = f"{spec.vehicle_id} from {base}"
                        todo.append(node)
        return reached


# ---------------------------------------------------------------- goods in and out


def _check_balances(plan: Plan, expect: Expectations) -> list[str]:
    """Every PPS gets exactly its items, every PPK and port hands on what it received, no vehicle leaves with
    goods that have not arrived yet, and each warehouse sends its kabupaten's total."""
    ledger = GoodsLedger.of_routes(plan.routes, _label)
    unserved = {u.node_id for u in plan.unserved}
    kabupaten = set(expect.kabupaten_codes())
    pps_in_plan = sorted(p for p in expect.pps_goods if kabupaten_of(p) in kabupaten)
    return [
        *_pps_balances(ledger, expect, pps_in_plan, unserved),
        *_ppk_balances(ledger, expect, pps_in_plan, unserved, kabupaten),
        *_hub_balances(ledger, unserved),
        *_stock_order(ledger),
        *_warehouse_balances(ledger, expect, kabupaten, unserved),
    ]


def _pps_balances(
    ledger: GoodsLedger, expect: Expectations, pps_in_plan: list[str], unserved: set[str]
) -> list[str]:
    out = []
    for pps in pps_in_plan:
        got, want = ledger.received.get(pps, {}), add_goods(expect.pps_goods[pps])
        if pps in unserved:
            if got == want:
                out.append(f"{pps}: listed unserved, but it receives all its items")
            elif any(q > want.get(i, 0) for i, q in got.items()):
                out.append(f"{pps}: listed unserved but receives more than its items")
        elif not got:
            out.append(f"{pps}: receives nothing and is not listed as unserved")
        elif got != want:
            out.append(f"{pps}: receives {_diff(got, want)}")
    return out


def _ppk_balances(
    ledger: GoodsLedger, expect: Expectations, pps_in_plan: list[str], unserved: set[str], kabupaten: set[str]
) -> list[str]:
    out = []
    for ppk in sorted(p for p in expect.ppk_own if kabupaten_of(p) in kabupaten):
        members = [p for p in pps_in_plan if expect.pps_ppk[p] == ppk and p not in expect.assigned]
        want_in = add_goods(expect.ppk_own[ppk], *(expect.pps_goods[p] for p in members))
        got = ledger.received.get(ppk, {})
        if ppk in unserved:
            if want_in and got == want_in:
                out.append(f"{ppk}: listed unserved, but it receives all its items")
            continue
        if got != want_in:
            out.append(f"{ppk}: receives {_diff(got, want_in)}")
            continue
        kept = subtract_goods(got, ledger.sent.get(ppk, {}))
        own = add_goods(expect.ppk_own[ppk])
        may_hold = add_goods(own, *(expect.pps_goods[p] for p in members if p in unserved))
        if any(kept.get(i, 0) < q for i, q in own.items()) or any(
            q > may_hold.get(i, 0) for i, q in kept.items()
        ):
            out.append(f"{ppk}: keeps {_diff(kept, own)} (it must hand on everything but its own items)")
    return out


def _hub_balances(ledger: GoodsLedger, unserved: set[str]) -> list[str]:
    out = []
    for node in sorted(n for n in set(ledger.received) | set(ledger.sent) if is_hub(n)):
        got, gone = ledger.received.get(node, {}), ledger.sent.get(node, {})
        short = any(q > got.get(i, 0) for i, q in gone.items())
        if short or (got != gone and not unserved):
            out.append(f"{node}: hands on {_diff(gone, got)} of what it received")
    return out


def _stock_order(ledger: GoodsLedger) -> list[str]:
    """No trip leaves a PPK or port with goods that have not arrived there yet."""
    out = []
    for node in sorted(n for n in ledger.sent if not is_warehouse(n)):
        if event := ledger.first_short(node):
            out.append(
                f"{event.who}: leaves {node} at {event.when:%d %b %H:%M} with goods that have not arrived there yet"
            )
    return out


def _warehouse_balances(
    ledger: GoodsLedger, expect: Expectations, kabupaten: set[str], unserved: set[str]
) -> list[str]:
    out = []
    for code in sorted(kabupaten):
        total = add_goods(
            *(g for p, g in expect.ppk_own.items() if kabupaten_of(p) == code),
            *(g for p, g in expect.pps_goods.items() if kabupaten_of(p) == code),
        )
        loaded = ledger.sent.get(f"wh:{code}", {})
        if any(q > total.get(i, 0) for i, q in loaded.items()) or (
            not any(kabupaten_of(u) == code for u in unserved) and loaded != total
        ):
            out.append(f"wh:{code}: sends {_diff(loaded, total)} (the kabupaten's total)")
    return out


def _check_assignments(plan: Plan, expect: Expectations) -> list[str]:
    """Every delivery to a desa pinned by an assign rule is made by a vehicle of the rule's type and base."""
    out = []
    for route in plan.routes:
        spec = expect.vehicles.get(route.vehicle_id)
        for stop in route.stops:
            rule = expect.assigned.get(stop.node_id)
            if not stop.deliver or rule is None or spec is None:
                continue
            if (spec.base, spec.type_id) != (rule.base, rule.type_id):
                out.append(
                    f"{_label(route)}: delivers at {stop.node_id}, which the assign rule {rule.rule!r} gives to "
                    f"the {rule.type_id} of {rule.base}"
                )
    return out


def _check_kpis(plan: Plan, expect: Expectations) -> list[str]:
    """The plan's KPIs must be those its routes and unserved list give."""
    codes = set(expect.kabupaten_codes())
    if any(r.kabupaten_code not in codes for r in plan.routes) or any(
        u.kabupaten_code not in codes for u in plan.unserved
    ):
        return []  # reported with the routes and the unserved list
    want = plan_kpis(plan, expect, expect.kabupaten_codes())
    if plan.kpis is None:
        return ["kpis: missing (a plan carries the KPIs of its routes)"]
    wrong = _kpi_differences(plan.kpis.model_dump(), want.model_dump(), "kpis")
    out = [f"{path}: the plan says {got!r}, its routes give {value!r}" for path, got, value in wrong]
    if len(out) > MAX_KPI_PROBLEMS:
        out = [*out[:MAX_KPI_PROBLEMS], f"kpis: and {len(out) - MAX_KPI_PROBLEMS} more wrong values"]
    return out


def _kpi_differences(got: object, want: object, path: str) -> list[tuple[str, object, object]]:
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [(path, got, "a table")]
        keys = sorted(set(got) | set(want), key=str)
        return [d for k in keys for d in _kpi_differences(got.get(k), want.get(k), f"{path}.{k}")]
    numbers = (int, float)
    if isinstance(want, numbers) and isinstance(got, numbers) and not isinstance(got, bool):
        return [] if math.isclose(got, want, abs_tol=KPI_TOLERANCE) else [(path, got, want)]
    return [] if got == want else [(path, got, want)]


def _check_kits(plan: Plan, expect: Expectations) -> list[str]:
    """At a PPS, TPS-kit items arrive only as the whole kits its stop names (`tps_kits`), each kit once."""
    out: list[str] = []
    seen: dict[str, set[int]] = defaultdict(set)
    for route in plan.routes:
        for stop in route.stops:
            kits = expect.pps_kits.get(stop.node_id)
            where = f"{_label(route)}: at {stop.node_id}"
            if kits is None:
                if stop.tps_kits and stop.node_id not in expect.pps_goods:
                    out.append(f"{where}: names TPS kits {stop.tps_kits}, but only a PPS receives TPS kits")
                continue
            if not (stop.deliver or stop.tps_kits):
                continue
            unknown = [n for n in stop.tps_kits if not 1 <= n <= len(kits)]
            if unknown:
                out.append(f"{where}: no TPS kit {unknown[0]} (the desa has {len(kits)} TPS)")
                continue
            twice = sorted(
                {n for n in stop.tps_kits if n in seen[stop.node_id] or stop.tps_kits.count(n) > 1}
            )
            if twice:
                out.append(f"{where}: TPS kit {twice[0]} is handed over more than once")
            seen[stop.node_id].update(stop.tps_kits)
            kit_items = {i for kit in kits for i in kit}
            named = add_goods(*(kits[n - 1] for n in stop.tps_kits))
            handed = {i: q for i, q in stop.deliver.items() if i in kit_items}
            if handed != named:
                out.append(
                    f"{where}: the TPS-kit items handed over are not the whole kits {stop.tps_kits or '[]'} "
                    f"({_diff(handed, named)})"
                )
    return out


def _diff(got: Mapping[str, int], want: Mapping[str, int]) -> str:
    parts = [
        f"{item} {got.get(item, 0)} instead of {want.get(item, 0)}"
        for item in sorted(set(got) | set(want))
        if got.get(item, 0) != want.get(item, 0)
    ]
    return (
        ", ".join(parts[:4]) + (f" and {len(parts) - 4} more" if len(parts) > 4 else "")
        if parts
        else "the right items"
    )
