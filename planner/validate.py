"""Re-check a plan against the network and the demand directly, without the solver or its matrices.

Every route must follow open legs of its vehicle's modes from stop to stop, in order, from its base back to its
base; respect capacity, operating hours, handling times and deadlines; and every PPS must receive exactly its
items (or be listed unserved), every PPK and port must hand on exactly what it received, and no vehicle may
leave a transfer point with goods that have not arrived there yet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from planner.dispatch import ItemUnit, add_goods, goods_weight
from planner.network import Network
from planner.operations import VehicleSpec, add_working_minutes, is_open
from planner.plan import Plan, Route

TOLERANCE_MIN = 1  # rounding of travel times to whole minutes


@dataclass(frozen=True)
class Expectations:
    """What the plan must achieve, read from the scenario: network, fleet, goods and calendar."""

    network: Network
    vehicles: Mapping[str, VehicleSpec]
    units: Mapping[str, ItemUnit]
    pps_goods: Mapping[str, Mapping[str, int]]
    ppk_own: Mapping[str, Mapping[str, int]]
    pps_ppk: Mapping[str, str]
    start: datetime
    ppk_deadline: datetime
    pps_deadline: datetime

    @property
    def start_minute_of_day(self) -> int:
        return self.start.hour * 60 + self.start.minute

    def minute(self, when: datetime) -> int:
        return round((when - self.start).total_seconds() / 60)

    def at(self, minute: int) -> datetime:
        return self.start + timedelta(minutes=int(minute))


def validate_plan(plan: Plan, expect: Expectations) -> list[str]:
    """All violations of the plan, as sentences that name the vehicle, stop, leg or node; [] if valid."""
    network = expect.network
    if plan.replan and plan.replan.unblocked:
        network = network.unblocked(plan.replan.unblocked)
    if plan.blocked_legs:
        network = network.blocked(plan.blocked_legs)
    frozen_before = expect.minute(plan.replan.at) if plan.replan else None
    problems: list[str] = []
    for route in plan.routes:
        problems += _check_route(route, network, expect, frozen_before)
    problems += _check_trips_do_not_overlap(plan)
    problems += _check_balances(plan, expect)
    return problems


def _label(route: Route) -> str:
    return f"{route.vehicle_id} trip {route.trip}"


def _check_route(
    route: Route, network: Network, expect: Expectations, frozen_before: int | None = None
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
    if len(route.stops) < 2 or route.stops[0].node_id != route.base or route.stops[-1].node_id != end:
        out.append(f"{label}: must start at its base {route.base} and end at {end}")
        return out
    out += _check_path(route, network, spec, expect, frozen_before)
    out += _check_loads(route, spec, expect)
    return out


def _check_path(
    route: Route, network: Network, spec: VehicleSpec, expect: Expectations, frozen_before: int | None = None
) -> list[str]:
    """Walk the legs; the stops must come in order along the walk, and the times must allow the travel.

    In a re-plan, a leg the vehicle started on before the change (`frozen_before`) may be blocked now."""
    label, kind, legs = _label(route), spec.kind, network.legs
    hours, day = kind.operating_hours, expect.start_minute_of_day
    out: list[str] = []
    position = route.base
    next_stop = 1
    travel = [0.0] * len(route.stops)  # minutes of travel before reaching stop i
    for leg_id in route.legs:
        if leg_id not in legs.index:
            out.append(f"{label}: leg {leg_id} does not exist in the network")
            return out
        leg = legs.loc[leg_id]
        if leg["status"] != "open":
            departed = expect.minute(route.stops[next_stop - 1].departure)
            started = add_working_minutes(departed, int(travel[next_stop]), hours, day)
            if frozen_before is None or started >= frozen_before:
                out.append(f"{label}: leg {leg_id} is blocked")
        if leg["mode"] not in kind.modes:
            out.append(f"{label}: leg {leg_id} is {leg['mode']}, not allowed for a {kind.type_id}")
        if leg["from_node"] == position:
            position = leg["to_node"]
        elif leg["to_node"] == position and leg["mode"] != "river":
            position = leg["from_node"]
        else:
            out.append(f"{label}: leg {leg_id} does not start at {position}")
            return out
        speed = kind.speeds.leg_speed(leg["mode"], leg["direction"], bool(leg["rapids"]))
        if speed > 0:
            travel[next_stop] += leg["length_km"] / speed * 60
        while next_stop < len(route.stops) - 1 and route.stops[next_stop].node_id == position:
            next_stop += 1
    if next_stop != len(route.stops) - 1 or position != (route.stranded_at or route.base):
        missing = route.stops[next_stop].node_id
        out.append(f"{label}: the legs do not pass its stops in order (first missed: {missing})")
        return out
    return out + _check_times(route, spec, expect, travel)


def _check_times(route: Route, spec: VehicleSpec, expect: Expectations, travel: list[float]) -> list[str]:
    label, kind = _label(route), spec.kind
    hours, day = kind.operating_hours, expect.start_minute_of_day
    out = []
    for i, stop in enumerate(route.stops):
        arrival, departure = expect.minute(stop.arrival), expect.minute(stop.departure)
        if departure < arrival:
            out.append(
                f"{label}: at {stop.node_id} departure {stop.departure} is before arrival {stop.arrival}"
            )
        handling = kind.load_min if i == 0 else (kind.unload_min if stop.deliver else 0)
        if departure + TOLERANCE_MIN < add_working_minutes(arrival, handling, hours, day):
            out.append(f"{label}: at {stop.node_id} leaves before {handling} min of handling are done")
        for what, t in (("arrives", arrival), ("leaves", departure)):
            if (stop.deliver or i == 0) and not is_open(t, hours, day):
                out.append(
                    f"{label}: {what} {stop.node_id} at {stop.arrival:%d %b %H:%M}, outside operating hours"
                )
        if i > 0:
            previous = expect.minute(route.stops[i - 1].departure)
            earliest = add_working_minutes(previous, int(travel[i]), hours, day)
            if arrival + TOLERANCE_MIN < earliest:
                out.append(
                    f"{label}: reaches {stop.node_id} at {stop.arrival:%d %b %H:%M}, but the travel takes "
                    f"{travel[i]:.0f} min of operating time from the previous stop"
                )
        deadline = _deadline(stop.node_id, expect)
        if stop.deliver and deadline is not None and arrival > expect.minute(deadline):
            out.append(
                f"{label}: delivers at {stop.node_id} at {stop.arrival:%d %b %H:%M}, after the deadline"
            )
    return out


def _deadline(node_id: str, expect: Expectations) -> datetime | None:
    if node_id.startswith("pps:"):
        return expect.pps_deadline
    if node_id.startswith("ppk:"):
        return expect.ppk_deadline
    return None


def _check_loads(route: Route, spec: VehicleSpec, expect: Expectations) -> list[str]:
    label, kind = _label(route), spec.kind
    out = []
    unknown = {i for s in route.stops for i in (*s.deliver, *s.load)} - set(expect.units)
    if unknown:
        return [f"{label}: unknown item(s) {', '.join(sorted(unknown))}"]
    if any(s.load for s in route.stops[1:]):
        out.append(f"{label}: loads goods away from its base")
    loaded = add_goods(route.stops[0].load)
    delivered = add_goods(*(s.deliver for s in route.stops))
    if loaded != delivered:
        out.append(
            f"{label}: loads {sum(loaded.values())} units at {route.base} but delivers {sum(delivered.values())}"
        )
    kg, m3 = goods_weight(loaded, expect.units)
    if kg > kind.capacity_kg * 1.000001 or m3 > kind.capacity_m3 * 1.000001:
        out.append(
            f"{label}: carries {kg:,.0f} kg / {m3:.2f} m3, over the capacity of a {kind.type_id} "
            f"({kind.capacity_kg:,.0f} kg / {kind.capacity_m3:.2f} m3)"
        )
    if any(q < 0 for s in route.stops for q in (*s.deliver.values(), *s.load.values())):
        out.append(f"{label}: negative quantity")
    return out


def _check_trips_do_not_overlap(plan: Plan) -> list[str]:
    by_vehicle: dict[str, list[Route]] = defaultdict(list)
    for route in plan.routes:
        by_vehicle[route.vehicle_id].append(route)
    out = []
    for vehicle, routes in sorted(by_vehicle.items()):
        routes.sort(key=lambda r: r.stops[0].arrival)
        for a, b in zip(routes, routes[1:], strict=False):
            if b.stops[0].arrival < a.stops[-1].arrival:
                out.append(f"{vehicle}: trip {b.trip} starts before trip {a.trip} is back at base")
    return out


def _check_balances(plan: Plan, expect: Expectations) -> list[str]:
    received: dict[str, dict[str, int]] = defaultdict(dict)
    sent: dict[str, dict[str, int]] = defaultdict(dict)
    events: dict[str, list[tuple[datetime, int, dict[str, int], str]]] = defaultdict(list)
    for route in plan.routes:
        for stop in route.stops:
            if stop.deliver:
                received[stop.node_id] = add_goods(received[stop.node_id], stop.deliver)
                events[stop.node_id].append((stop.departure, 0, dict(stop.deliver), _label(route)))
        if route.stops and route.stops[0].load:
            sent[route.base] = add_goods(sent[route.base], route.stops[0].load)
            events[route.base].append((route.stops[0].departure, 1, dict(route.stops[0].load), _label(route)))
    unserved = {u.node_id for u in plan.unserved}
    kabupaten = {r.kabupaten_code for r in plan.routes} | {u.kabupaten_code for u in plan.unserved}

    def in_plan(node: str) -> bool:
        return node.split(":")[1][:5] in kabupaten

    out = []
    pps_in_plan = sorted(p for p in expect.pps_goods if in_plan(p))
    for pps in pps_in_plan:
        got, want = received.get(pps, {}), add_goods(expect.pps_goods[pps])
        if pps in unserved:
            if any(q > want.get(i, 0) for i, q in got.items()):
                out.append(f"{pps}: listed unserved but receives more than its items")
        elif not got:
            out.append(f"{pps}: receives nothing and is not listed as unserved")
        elif got != want:
            out.append(f"{pps}: receives {_diff(got, want)}")
    for ppk in sorted(p for p in expect.ppk_own if in_plan(p)):
        if ppk in unserved:
            continue
        members = [p for p in pps_in_plan if expect.pps_ppk[p] == ppk]
        want_in = add_goods(expect.ppk_own[ppk], *(expect.pps_goods[p] for p in members))
        got = received.get(ppk, {})
        if got != want_in:
            out.append(f"{ppk}: receives {_diff(got, want_in)}")
            continue
        kept = _minus(got, sent.get(ppk, {}))
        own = add_goods(expect.ppk_own[ppk])
        may_hold = add_goods(own, *(expect.pps_goods[p] for p in members if p in unserved))
        if any(kept.get(i, 0) < q for i, q in own.items()) or any(
            q > may_hold.get(i, 0) for i, q in kept.items()
        ):
            out.append(f"{ppk}: keeps {_diff(kept, own)} (it must hand on everything but its own items)")
    for node in sorted(set(received) | set(sent)):
        if not node.startswith(("port:", "jetty:", "seaport:")):
            continue
        got, gone = received.get(node, {}), sent.get(node, {})
        short = any(q > got.get(i, 0) for i, q in gone.items())
        if short or (got != gone and not unserved):
            out.append(f"{node}: hands on {_diff(gone, got)} of what it received")
    for node in sorted(sent):
        if node.startswith("wh:"):
            continue
        stock: dict[str, int] = defaultdict(int)
        for when, order, goods, who in sorted(events[node], key=lambda e: (e[0], e[1])):
            sign = 1 if order == 0 else -1
            for item, qty in goods.items():
                stock[item] += sign * qty
            if any(v < 0 for v in stock.values()):
                out.append(
                    f"{who}: leaves {node} at {when:%d %b %H:%M} with goods that have not arrived there yet"
                )
                break
    for code in sorted(kabupaten):
        total = add_goods(
            *(g for p, g in expect.ppk_own.items() if p.split(":")[1][:5] == code),
            *(g for p, g in expect.pps_goods.items() if p.split(":")[1][:5] == code),
        )
        loaded = sent.get(f"wh:{code}", {})
        if any(q > total.get(i, 0) for i, q in loaded.items()) or (
            not any(u.split(":")[1][:5] == code for u in unserved) and loaded != total
        ):
            out.append(f"wh:{code}: sends {_diff(loaded, total)} (the kabupaten's total)")
    return out


def _minus(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) - b.get(k, 0) for k in sorted(set(a) | set(b)) if a.get(k, 0) != b.get(k, 0)}


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
