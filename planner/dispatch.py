"""Dispatch: turn one kabupaten's goods and fleet into routing problems, solve them tier by tier, keep the routes.

The goods move warehouse -> PPK (tier 1), then PPK -> PPS (tier 2). Where no vehicle based at the origin can
reach a destination over its own modes, the goods go by way of a port (hub) whose boats or ships can: the
origin's vehicles drop them at the hub (a real stop), and the hub's vessels leave only after everything they
carry has arrived there. So each kabupaten is solved as up to four layers, in order:

    1. warehouse fleet -> PPK and hub drops        2. hub vessels -> PPK (released when the drops arrived)
    3. PPK fleets -> PPS and hub drops (each PPK released when its goods arrived)    4. hub vessels -> PPS

Everything here is plain data in and out, so a kabupaten can be solved in another process.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from planner.model import UNREACHABLE, RoutingProblem, Stop, Vehicle, VehicleClass
from planner.network import Network
from planner.operations import VehicleSpec, add_working_minutes, latest_start, nights
from planner.paths import ALL_MODES_SPEEDS, PathMatrix, shortest_paths
from planner.search import SearchSettings, solve

MAX_TRIPS = 6
RETRIES = 2  # extra passes with earlier PPK deadlines when a PPK's own vehicles ran out of time
EARLIER_STEP_MIN = 12 * 60
DROP_PENALTY = 10**13  # milli-rupiah; far above any route cost, so only infeasible stops are left out
GRAMS, CM3 = 1000, 1_000_000


@dataclass(frozen=True)
class ItemUnit:
    id: str
    kg: float
    m3: float


@dataclass(frozen=True)
class Shipment:
    """Goods that must travel from `origin` to `destination` by `deadline` (minutes after the plan start)."""

    destination: str
    origin: str
    tier: int
    items: Mapping[str, int]
    deadline: int
    final: tuple[str, ...] = ()  # for a hub drop: the destinations whose goods these are


@dataclass(frozen=True)
class HubStock:
    """Goods for `destination` already at (or on their way to) port `hub`, there from minute `ready`."""

    tier: int
    hub: str
    destination: str
    items: Mapping[str, int]
    ready: int


@dataclass(frozen=True)
class DispatchState:
    """Where a re-plan starts. The default is a plan from scratch.

    Goods still to move are the task's ppk_goods / pps_goods (at their origin) and `hub_stock`. Nothing leaves
    before `not_before`, a base before `base_release` (goods brought back there), a vehicle before
    `vehicle_free`; trip numbers go on after `trips_done`. PPKs in `ppk_ready` already have all their goods.
    `warm_routes` are the previous plan's destinations per (vehicle id, tier), one tuple per trip, in order:
    the search starts from them.
    """

    not_before: int = 0
    vehicle_free: Mapping[str, int] = field(default_factory=dict)
    trips_done: Mapping[str, int] = field(default_factory=dict)
    ppk_ready: Mapping[str, int] = field(default_factory=dict)
    base_release: Mapping[str, int] = field(default_factory=dict)
    hub_stock: tuple[HubStock, ...] = ()
    warm_routes: Mapping[tuple[str, int], tuple[tuple[str, ...], ...]] = field(default_factory=dict)

    def release(self, base: str, minute: int = 0) -> int:
        return max(minute, self.not_before, self.base_release.get(base, 0))


@dataclass(frozen=True)
class KabupatenTask:
    kabupaten_code: str
    network: Network
    vehicles: tuple[VehicleSpec, ...]
    items: tuple[ItemUnit, ...]
    ppk_goods: Mapping[str, Mapping[str, int]]  # PPK node -> goods for the PPK itself and all its PPS
    ppk_own: Mapping[str, Mapping[str, int]]  # PPK node -> goods the PPK keeps
    pps_goods: Mapping[str, Mapping[str, int]]  # PPS node -> goods
    pps_ppk: Mapping[str, str]
    start_minute_of_day: int  # local clock time of the plan start, in minutes after midnight
    ppk_deadline: int
    pps_deadline: int
    settings: SearchSettings
    state: DispatchState = DispatchState()


@dataclass(frozen=True)
class Visit:
    node_id: str
    arrival: int
    departure: int
    deliver: Mapping[str, int] = field(default_factory=dict)
    load: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Trip:
    vehicle_id: str
    type_id: str
    base: str
    tier: int
    trip: int
    visits: tuple[Visit, ...]  # base first and last
    legs: tuple[str, ...]


@dataclass(frozen=True)
class Missed:
    node_id: str
    reason: str
    detail: str


@dataclass(frozen=True)
class KabupatenResult:
    kabupaten_code: str
    trips: tuple[Trip, ...]
    unserved: tuple[Missed, ...]
    layers: tuple[dict, ...]


# ---------------------------------------------------------------- goods arithmetic


def goods_weight(items: Mapping[str, int], units: Mapping[str, ItemUnit]) -> tuple[float, float]:
    kg = sum(q * units[i].kg for i, q in items.items())
    m3 = sum(q * units[i].m3 for i, q in items.items())
    return kg, m3


def add_goods(*parts: Mapping[str, int]) -> dict[str, int]:
    total: dict[str, int] = defaultdict(int)
    for part in parts:
        for item, qty in part.items():
            total[item] += qty
    return {k: v for k, v in sorted(total.items()) if v}


def integer_load(items: Mapping[str, int], units: Mapping[str, ItemUnit]) -> tuple[int, int]:
    """Weight in grams and volume in cm3, as the solver sees them (exact integers, no rounding drift)."""
    grams = sum(q * round(units[i].kg * GRAMS) for i, q in items.items())
    cm3 = sum(q * round(units[i].m3 * CM3) for i, q in items.items())
    return grams, cm3


def vehicle_capacity(capacity_kg: float, capacity_m3: float) -> tuple[int, int]:
    return math.floor(capacity_kg * GRAMS), math.floor(capacity_m3 * CM3)


def split_goods(
    items: Mapping[str, int], units: Mapping[str, ItemUnit], cap_kg: float, cap_m3: float
) -> list[dict[str, int]]:
    """Split goods into loads that each fit one vehicle, keeping whole units (bulkiest items first)."""
    capacity = vehicle_capacity(cap_kg, cap_m3)
    size = {i: integer_load({i: 1}, units) for i in items}
    grams, cm3 = integer_load(items, units)
    if grams <= capacity[0] and cm3 <= capacity[1]:
        return [dict(items)]
    loads: list[dict[str, int]] = [{}]
    room = list(capacity)
    order = sorted(items, key=lambda i: (-max(size[i][0] / capacity[0], size[i][1] / capacity[1]), i))
    for item in order:
        left = items[item]
        unit_g, unit_cm3 = size[item]
        while left:
            fit = min(left, room[0] // unit_g if unit_g else left, room[1] // unit_cm3 if unit_cm3 else left)
            if fit <= 0:
                if not loads[-1]:
                    raise ValueError(f"one unit of {item} does not fit a vehicle")
                loads.append({})
                room = list(capacity)
                continue
            loads[-1][item] = loads[-1].get(item, 0) + fit
            room[0] -= fit * unit_g
            room[1] -= fit * unit_cm3
            left -= fit
    return [dict(sorted(load.items())) for load in loads if load]


# ---------------------------------------------------------------- one layer


@dataclass
class _Layer:
    name: str
    tier: int
    shipments: list[Shipment]
    vehicles: list[VehicleSpec]
    release: Mapping[str, int]  # base node -> minute the goods are there
    available: Mapping[str, int]  # vehicle id -> minute it is free again
    trips_used: Mapping[str, int]  # vehicle id -> trips already driven


@dataclass
class _LayerOutcome:
    trips: list[Trip]
    arrivals: dict[int, int]  # shipment index -> latest arrival of its loads (departure after unloading)
    missed: dict[int, Missed]
    stats: dict


def _solve_layer(
    layer: _Layer, task: KabupatenTask, paths: Mapping[str, PathMatrix], time_limit: float
) -> _LayerOutcome:
    units = {u.id: u for u in task.items}
    horizon = task.pps_deadline + 2 * 1440
    kinds = {v.type_id: v.kind for v in layer.vehicles}
    type_ids = sorted(kinds)

    # loads (stops) for each shipment, sized to the largest vehicle that may carry it
    stops_meta: list[tuple[int, dict[str, int]]] = []
    missed: dict[int, Missed] = {}
    candidates: dict[int, list[VehicleSpec]] = {}
    for s_index, shipment in enumerate(layer.shipments):
        able = [
            v
            for v in layer.vehicles
            if v.base == shipment.origin
            and paths[v.type_id].there_and_back(shipment.origin, shipment.destination)
        ]
        candidates[s_index] = able
        if not able:
            missed[s_index] = Missed(
                shipment.destination, "no_vehicle", f"no vehicle at {shipment.origin} can get there and back"
            )
            continue
        biggest = max((v.kind for v in able), key=lambda k: (k.capacity_kg * k.capacity_m3, k.type_id))
        for load in split_goods(shipment.items, units, biggest.capacity_kg, biggest.capacity_m3):
            stops_meta.append((s_index, load))
    if not stops_meta:
        return _LayerOutcome([], {}, missed, {"layer": layer.name, "stops": 0})

    locations = sorted({v.base for v in layer.vehicles} | {s.destination for s in layer.shipments})
    loc_index = {n: i for i, n in enumerate(locations)}
    bases = {v.base for v in layer.vehicles}
    classes = []
    for type_id in type_ids:
        kind, matrix = kinds[type_id], paths[type_id]
        hours = np.array([[matrix.hours_between(a, b) for b in locations] for a in locations])
        km = np.array([[matrix.km_between(a, b) for b in locations] for a in locations])
        reachable = np.isfinite(hours)
        loading = np.array([kind.load_min if n in bases else 0 for n in locations])[:, None]
        duration = np.where(reachable, np.ceil(hours * 60) + loading, UNREACHABLE).astype(np.int64)
        distance = np.where(reachable, np.round(km * 1000), UNREACHABLE).astype(np.int64)
        np.fill_diagonal(duration, 0)
        np.fill_diagonal(distance, 0)
        classes.append(VehicleClass(type_id, distance, duration))

    # each physical vehicle drives up to MAX_TRIPS chained trips from its base, as many as its base's goods need
    base_load: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for s_index, load in stops_meta:
        kg, m3 = goods_weight(load, units)
        base_load[layer.shipments[s_index].origin][0] += kg
        base_load[layer.shipments[s_index].origin][1] += m3
    base_fleet: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for v in layer.vehicles:
        base_fleet[v.base][0] += v.kind.capacity_kg
        base_fleet[v.base][1] += v.kind.capacity_m3
    # enough trips to carry the base's goods, plus a spare: whole stops do not pack loads perfectly
    trips_at = {
        base: max(1, min(MAX_TRIPS, 2 + math.ceil(max(kg / base_fleet[base][0], m3 / base_fleet[base][1]))))
        for base, (kg, m3) in base_load.items()
    }
    vehicles: list[Vehicle] = []
    trip_owner: list[tuple[VehicleSpec, int]] = []
    rows_of: dict[str, list[int]] = defaultdict(list)
    for spec in layer.vehicles:
        if spec.base not in trips_at:
            continue
        kind = spec.kind
        first_trip = layer.trips_used.get(spec.vehicle_id, 0) + 1
        earliest = max(layer.release.get(spec.base, 0), layer.available.get(spec.vehicle_id, 0))
        previous = None
        for k in range(trips_at[spec.base]):
            rows_of[spec.vehicle_id].append(len(vehicles))
            vehicles.append(
                Vehicle(
                    id=f"{spec.vehicle_id}/{first_trip + k}",
                    class_index=type_ids.index(spec.type_id),
                    start_loc=loc_index[spec.base],
                    end_loc=loc_index[spec.base],
                    capacity=vehicle_capacity(kind.capacity_kg, kind.capacity_m3),
                    earliest_start=earliest,
                    latest_end=horizon,
                    fixed_cost=round(kind.cost_per_day * 1000),
                    cost_per_distance=max(1, round(kind.cost_per_km)),
                    breaks=nights(kind.operating_hours, task.start_minute_of_day, horizon),
                    follows=previous,
                )
            )
            previous = len(vehicles) - 1
            trip_owner.append((spec, first_trip + k))
    stops = []
    for s_index, load in stops_meta:
        shipment = layer.shipments[s_index]
        stops.append(
            Stop(
                loc=loc_index[shipment.destination],
                demand=integer_load(load, units),
                service=max(v.kind.unload_min for v in candidates[s_index]),
                window=(0, shipment.deadline),
                allowed_vehicles=tuple(i for v in candidates[s_index] for i in rows_of[v.vehicle_id]),
                penalty=DROP_PENALTY,
                name=shipment.destination,
            )
        )
    problem = RoutingProblem(
        vehicle_classes=tuple(classes),
        vehicles=tuple(vehicles),
        stops=tuple(stops),
        horizon=horizon,
        dimensions=("g", "cm3"),
        name=f"{task.kabupaten_code} {layer.name}",
    )
    warm = _warm_routes(layer, task.state, trip_owner, stops)
    solution = solve(problem, replace(task.settings, time_limit_s=time_limit), warm)

    trips: list[Trip] = []
    arrivals: dict[int, int] = {}
    served_loads: dict[int, int] = defaultdict(int)
    for route in solution.routes:
        if not route.visits:
            continue
        spec, trip_no = trip_owner[route.vehicle]
        kind, matrix = spec.kind, paths[spec.type_id]
        hours, day_start = kind.operating_hours, task.start_minute_of_day
        carried = add_goods(*(stops_meta[v.stop][1] for v in route.visits))
        visits = [
            Visit(
                spec.base,
                route.start_time,
                add_working_minutes(route.start_time, kind.load_min, hours, day_start),
                load=carried,
            )
        ]
        legs: list[str] = []
        at = spec.base
        for v in route.visits:
            s_index, load = stops_meta[v.stop]
            node = layer.shipments[s_index].destination
            legs += matrix.path_legs(at, node)
            departure = add_working_minutes(v.arrival, kind.unload_min, hours, day_start)
            visits.append(Visit(node, v.arrival, departure, deliver=load))
            arrivals[s_index] = max(arrivals.get(s_index, 0), departure)
            served_loads[s_index] += 1
            at = node
        legs += matrix.path_legs(at, spec.base)
        visits.append(Visit(spec.base, route.end_time, route.end_time))
        trips.append(
            Trip(spec.vehicle_id, spec.type_id, spec.base, layer.tier, trip_no, tuple(visits), tuple(legs))
        )

    expected: dict[int, int] = defaultdict(int)
    for s_index, _ in stops_meta:
        expected[s_index] += 1
    for s_index, count in expected.items():
        if served_loads[s_index] < count:
            missed[s_index] = _why_dropped(
                layer,
                s_index,
                candidates[s_index],
                paths,
                served_loads[s_index],
                count,
                task.start_minute_of_day,
            )
            arrivals.pop(s_index, None)
    stats = {
        "layer": layer.name,
        "stops": len(stops),
        "vehicles": len(layer.vehicles),
        "trips_per_vehicle": max(trips_at.values()),
        "wall_s": round(solution.wall_time_s, 2),
        "status": solution.status,
    }
    return _LayerOutcome(trips, arrivals, missed, stats)


def _warm_routes(
    layer: _Layer, state: DispatchState, trip_owner: Sequence[tuple[VehicleSpec, int]], stops: Sequence[Stop]
) -> list[list[int]] | None:
    """The previous plan's trips as stop indices per vehicle row (each destination's loads used once)."""
    if not state.warm_routes:
        return None
    unused: dict[str, list[int]] = defaultdict(list)
    for index, stop in enumerate(stops):
        unused[stop.name].append(index)
    routes: list[list[int]] = []
    seen: dict[str, int] = defaultdict(int)
    for spec, _ in trip_owner:
        previous = state.warm_routes.get((spec.vehicle_id, layer.tier), ())
        k = seen[spec.vehicle_id]
        seen[spec.vehicle_id] += 1
        destinations = previous[k] if k < len(previous) else ()
        routes.append([unused[d].pop(0) for d in destinations if unused[d]])
    return routes if any(routes) else None


def _why_dropped(
    layer: _Layer,
    s_index: int,
    able: Sequence[VehicleSpec],
    paths: Mapping[str, PathMatrix],
    served: int,
    loads: int,
    day_start: int,
) -> Missed:
    shipment = layer.shipments[s_index]
    earliest = min(
        add_working_minutes(
            max(layer.release.get(v.base, 0), layer.available.get(v.vehicle_id, 0)),
            v.kind.load_min + math.ceil(paths[v.type_id].hours_between(v.base, shipment.destination) * 60),
            v.kind.operating_hours,
            day_start,
        )
        for v in able
    )
    part = f" ({served} of {loads} loads delivered)" if served else ""
    if earliest > shipment.deadline:
        return Missed(
            shipment.destination,
            "too_late",
            f"the fastest vehicle from {shipment.origin} arrives {earliest - shipment.deadline} min after the deadline{part}",
        )
    return Missed(
        shipment.destination,
        "capacity",
        f"the vehicles at {shipment.origin} cannot carry everything before the deadline{part}",
    )


# ---------------------------------------------------------------- the kabupaten


def _route_choice(
    task: KabupatenTask,
    origin: str,
    destination: str,
    tier: int,
    paths: Mapping[str, PathMatrix],
    any_mode: PathMatrix,
) -> tuple[str, str | None]:
    """('direct', None), ('hub', port) or (reason, None) for goods from origin to destination."""
    at_origin = [v for v in task.vehicles if v.base == origin and tier in v.kind.tiers]
    if any(paths[v.type_id].there_and_back(origin, destination) for v in at_origin):
        return "direct", None
    best: tuple[float, str] | None = None
    vessels = [
        v
        for v in task.vehicles
        if v.base.startswith(("port:", "jetty:", "seaport:")) and tier in v.kind.tiers
    ]
    for hub in sorted({v.base for v in vessels}):
        to_hub = [_there_and_back_hours(paths[v.type_id], origin, hub) for v in at_origin]
        onward = [_there_and_back_hours(paths[v.type_id], hub, destination) for v in vessels if v.base == hub]
        cost = min(to_hub, default=math.inf) + min(onward, default=math.inf)
        if np.isfinite(cost) and (best is None or cost < best[0]):
            best = (cost, hub)
    if best is not None:
        return "hub", best[1]
    if not any_mode.there_and_back(origin, destination):
        return "unreachable", None
    return "no_vehicle", None


def _there_and_back_hours(matrix: PathMatrix, a: str, b: str) -> float:
    """Hours from a to b, or inf when there is no way back (a vehicle must return to its base)."""
    return matrix.hours_between(a, b) if matrix.there_and_back(a, b) else math.inf


def _unreachable_detail(origin: str, any_mode: PathMatrix, destination: str) -> str:
    if np.isfinite(any_mode.hours_between(origin, destination)):
        return f"open legs lead from {origin} to it but none lead back"
    return f"no open leg of any mode joins {origin} and it"


def _latest_drop(
    task: KabupatenTask,
    hub: str,
    dests: Sequence[str],
    deadline: int,
    tier: int,
    paths: Mapping[str, PathMatrix],
    origin_fleet: Sequence[VehicleSpec],
) -> int:
    """The latest arrival at a hub that still lets its fastest vessel reach every destination in time."""
    day = task.start_minute_of_day
    unload = max((v.kind.unload_min for v in origin_fleet), default=0)
    latest = deadline
    for dest in dests:
        best = -(10**9)
        for v in task.vehicles:
            if v.base != hub or tier not in v.kind.tiers:
                continue
            hours = paths[v.type_id].hours_between(hub, dest)
            if not np.isfinite(hours):
                continue
            onward = v.kind.load_min + math.ceil(hours * 60) + v.kind.unload_min
            start = latest_start(deadline, onward, v.kind.operating_hours, day)
            best = max(best, latest_start(start, unload, v.kind.operating_hours, day))
        latest = min(latest, best)
    return latest


def plan_kabupaten(task: KabupatenTask) -> KabupatenResult:
    """Plan the kabupaten; if desa are left unserved because their PPK got its goods too late for its own
    vehicles, plan again with an earlier deadline for those PPKs (up to RETRIES times, half the time each),
    and keep the plan that serves the most."""
    network = task.network
    wh = network.warehouse_of(task.kabupaten_code)
    hubs = sorted({v.base for v in task.vehicles if v.base.startswith(("port:", "jetty:", "seaport:"))})
    bases = sorted({v.base for v in task.vehicles})
    stock_destinations = {s.destination for s in task.state.hub_stock}
    sources = sorted({wh, *task.ppk_goods, *task.pps_goods, *hubs, *bases, *stock_destinations})
    paths = {
        type_id: shortest_paths(network, kind.speeds, sources=sources)
        for type_id, kind in sorted({v.type_id: v.kind for v in task.vehicles}.items())
    }
    any_mode = shortest_paths(network, ALL_MODES_SPEEDS, sources=sources)
    best, arrival = _plan_pass(task, paths, any_mode, {}, task.settings.time_limit_s)
    earlier: dict[str, int] = {}
    for attempt in range(1, RETRIES + 1):
        late = {
            task.pps_ppk[m.node_id]
            for m in best.unserved
            if m.node_id in task.pps_ppk and m.reason in ("capacity", "too_late")
        }
        late = {p for p in late if p in arrival and p not in task.state.ppk_ready}
        if not late:
            break
        earlier.update({p: arrival[p] - attempt * EARLIER_STEP_MIN for p in late})
        candidate, candidate_arrival = _plan_pass(
            task, paths, any_mode, earlier, task.settings.time_limit_s / 2
        )
        if len(candidate.unserved) < len(best.unserved):
            best, arrival = candidate, candidate_arrival
    return best


def _plan_pass(
    task: KabupatenTask,
    paths: Mapping[str, PathMatrix],
    any_mode: PathMatrix,
    ppk_deadline: Mapping[str, int],
    budget: float,
) -> tuple[KabupatenResult, dict[str, int]]:
    """One plan of the kabupaten, tier by tier; `ppk_deadline` overrides the PPK deadline of some PPKs.
    Returns the result and the minute each PPK has all its goods."""
    network = task.network
    wh = network.warehouse_of(task.kabupaten_code)
    ppks = sorted(task.ppk_goods)
    n_stops = len(ppks) + len(task.pps_goods)
    trips: list[Trip] = []
    unserved: list[Missed] = []
    layers_stats: list[dict] = []
    state = task.state
    available: dict[str, int] = dict(state.vehicle_free)
    trips_used: dict[str, int] = dict(state.trips_done)

    def run(
        name: str, tier: int, shipments: list[Shipment], vehicles: list[VehicleSpec], release
    ) -> _LayerOutcome:
        share = max(len(shipments), 1) / max(n_stops, 1)
        outcome = _solve_layer(
            _Layer(name, tier, shipments, vehicles, release, dict(available), dict(trips_used)),
            task,
            paths,
            max(1.0, budget * share),
        )
        for trip in outcome.trips:
            available[trip.vehicle_id] = max(available.get(trip.vehicle_id, 0), trip.visits[-1].arrival)
            trips_used[trip.vehicle_id] = max(trips_used.get(trip.vehicle_id, 0), trip.trip)
        trips.extend(outcome.trips)
        layers_stats.append(outcome.stats)
        return outcome

    def two_step(
        tier: int,
        origin_of: Mapping[str, str],
        goods: Mapping[str, Mapping[str, int]],
        deadline: int,
        release,
    ):
        """Direct deliveries and hub drops from the origins, then the hubs' vessels; returns arrival per destination."""
        direct, via_hub = [], defaultdict(list)

        def deadline_of(dest: str) -> int:
            return min(deadline, ppk_deadline.get(dest, deadline))

        for dest in sorted(goods):
            choice, hub = _route_choice(task, origin_of[dest], dest, tier, paths, any_mode)
            if choice == "direct":
                direct.append(Shipment(dest, origin_of[dest], tier, goods[dest], deadline_of(dest)))
            elif choice == "hub":
                via_hub[(origin_of[dest], hub)].append(dest)
            else:
                detail = (
                    _unreachable_detail(origin_of[dest], any_mode, dest)
                    if choice == "unreachable"
                    else f"no vehicle of the needed modes is based at {origin_of[dest]} or at a port"
                )
                unserved.append(Missed(dest, choice, detail))
        origin_fleet = [
            v for v in task.vehicles if tier in v.kind.tiers and v.base in set(origin_of.values())
        ]
        release = {base: state.release(base, minute) for base, minute in release.items()}
        drops = []
        for (origin, hub), dests in sorted(via_hub.items()):
            latest = _latest_drop(task, hub, dests, min(map(deadline_of, dests)), tier, paths, origin_fleet)
            if latest < 0:
                unserved.extend(
                    Missed(d, "too_late", f"the boats at {hub} cannot make the deadline") for d in dests
                )
                continue
            drops.append(
                Shipment(hub, origin, tier, add_goods(*(goods[d] for d in dests)), latest, tuple(dests))
            )
        first = run(
            f"tier {tier}: from {'warehouse' if tier == 1 else 'PPK'}",
            tier,
            direct + drops,
            origin_fleet,
            release,
        )
        arrival = {}
        shipments = direct + drops
        for s_index, shipment in enumerate(shipments):
            if s_index in first.missed:
                miss = first.missed[s_index]
                for dest in shipment.final or (shipment.destination,):
                    unserved.append(
                        Missed(
                            dest,
                            miss.reason,
                            miss.detail
                            if not shipment.final
                            else f"via {shipment.destination}: {miss.detail}",
                        )
                    )
            elif not shipment.final:
                arrival[shipment.destination] = first.arrivals[s_index]
        hub_release: dict[str, int] = {}
        onward = []
        for stock in state.hub_stock:
            if stock.tier == tier:
                hub_release[stock.hub] = state.release(
                    stock.hub, max(hub_release.get(stock.hub, 0), stock.ready)
                )
                onward.append(Shipment(stock.destination, stock.hub, tier, stock.items, deadline))
        for s_index, shipment in enumerate(shipments):
            if shipment.final and s_index not in first.missed:
                hub_release[shipment.destination] = max(
                    hub_release.get(shipment.destination, 0), first.arrivals[s_index]
                )
                onward += [
                    Shipment(d, shipment.destination, tier, goods[d], deadline_of(d)) for d in shipment.final
                ]
        if onward:
            vessels = [v for v in task.vehicles if tier in v.kind.tiers and v.base in hub_release]
            second = run(f"tier {tier}: from ports", tier, onward, vessels, hub_release)
            for s_index, shipment in enumerate(onward):
                if s_index in second.missed:
                    unserved.append(second.missed[s_index])
                else:
                    done = second.arrivals[s_index]
                    arrival[shipment.destination] = max(arrival.get(shipment.destination, done), done)
        return arrival

    ppk_arrival = dict(state.ppk_ready)
    ppk_arrival.update(two_step(1, dict.fromkeys(ppks, wh), task.ppk_goods, task.ppk_deadline, {wh: 0}))
    supplied = set(ppk_arrival)
    pps_goods = {}
    for pps, goods in task.pps_goods.items():
        ppk = task.pps_ppk[pps]
        if ppk in supplied:
            pps_goods[pps] = goods
        else:
            why = next((m for m in unserved if m.node_id == ppk), None)
            reason = why.reason if why else "no_vehicle"
            unserved.append(Missed(pps, reason, f"its PPK {ppk} was not supplied"))
    two_step(2, {p: task.pps_ppk[p] for p in pps_goods}, pps_goods, task.pps_deadline, ppk_arrival)
    trips.sort(key=lambda t: (t.tier, t.vehicle_id, t.trip))
    result = KabupatenResult(
        task.kabupaten_code,
        tuple(trips),
        tuple(sorted(unserved, key=lambda m: m.node_id)),
        tuple(layers_stats),
    )
    return result, ppk_arrival
