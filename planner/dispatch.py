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

from planner.catalog import Item
from planner.goods import add_goods, goods_weight
from planner.model import UNREACHABLE, RoutingProblem, Stop, Vehicle, VehicleClass
from planner.network import Network
from planner.nodes import is_hub, is_pps
from planner.paths import ALL_MODES_SPEEDS, PathMatrix, shortest_paths
from planner.search import SearchSettings, solve
from planner.vehicles import (
    Assignment,
    Driving,
    VehicleSpec,
    VehicleType,
    after_stop,
    handling_minutes,
    latest_setting_out,
    latest_start,
    nights,
    planning_hours,
    schedule_trip,
    travel_padding,
)

MAX_TRIPS = 6
COUPLING_ROUNDS = (
    2  # plans of a kabupaten at most: the coupled one, and one with earlier deadlines for late PPKs
)
COUPLING_MARGIN_MIN = 3 * 60  # least room between the earliest arrival and a coupled PPK deadline
TIGHTEN_STEP_MIN = 6 * 60  # how much earlier a late PPK's goods must arrive in the next round
BACKWARD_SHARE = 0.5  # share of the search time given to the backward pass (two solves at most)
MAX_HANDOVER_KM = 150  # a PPK's vehicle should not drive further than this to hand goods to a boat (issue 11)
DIRECT_SLACK_H = 8.0  # drive direct unless handing over at a port is faster by more than this (a working day)
DROP_PENALTY = 10**13  # milli-rupiah; far above any route cost, so only infeasible stops are left out
GRAMS, CM3 = 1000, 1_000_000
# the least search time of a layer: a warehouse layer is a few stops but, with whole TPS kits, many trips
MIN_LAYER_S = 3.0
TINY_LOADS = 4  # a routing problem of at most this many loads is searched by greedy descent
MIN_PART_S = 0.5  # the least search time of one origin's part of a layer (see _solve_layer)
READBACK_ROUNDS = 3  # solves of one origin's layer at most (late loads barred, next seed; _solve_origin)


@dataclass(frozen=True)
class Kit:
    """The TPS kit of one TPS (its boxes with their contents, its booths): never split across vehicles."""

    pps: str
    number: int  # the TPS number within the desa, 1-based
    items: Mapping[str, int]


@dataclass(frozen=True)
class Shipment:
    """Goods that must travel from `origin` to `destination` by `deadline` (minutes after the plan start).

    `kits` are the TPS kits among the items: each travels whole; the rest of `items` is split by unit."""

    destination: str
    origin: str
    tier: int
    items: Mapping[str, int]
    deadline: int
    final: tuple[str, ...] = ()  # for a hub drop: the destinations whose goods these are
    kits: tuple[Kit, ...] = ()
    pinned_type: str = ""  # set by an assign rule: only vehicles of this type may carry it


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
    the search starts from them. `driving`: each vehicle's driving account when it is free (the day's driving
    of its kept trips counts on). `ppk_due`: PPKs whose kept trips start at a set minute (a re-plan that keeps a
    PPK's trips while its goods come differently): their goods should be unloaded there by then; where that
    cannot be planned, the calendar's deadline applies (and the re-plan plans those trips again).
    """

    not_before: int = 0
    vehicle_free: Mapping[str, int] = field(default_factory=dict)
    trips_done: Mapping[str, int] = field(default_factory=dict)
    ppk_ready: Mapping[str, int] = field(default_factory=dict)
    base_release: Mapping[str, int] = field(default_factory=dict)
    hub_stock: tuple[HubStock, ...] = ()
    warm_routes: Mapping[tuple[str, int], tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    kits_done: Mapping[str, frozenset[int]] = field(default_factory=dict)  # PPS -> TPS kits already there
    ppk_due: Mapping[str, int] = field(default_factory=dict)
    driving: Mapping[str, Driving] = field(default_factory=dict)  # vehicle id -> its account at vehicle_free

    def release(self, base: str, minute: int = 0) -> int:
        return max(minute, self.not_before, self.base_release.get(base, 0))


@dataclass(frozen=True)
class KabupatenTask:
    kabupaten_code: str
    network: Network
    vehicles: tuple[VehicleSpec, ...]
    items: tuple[Item, ...]
    ppk_goods: Mapping[str, Mapping[str, int]]  # PPK node -> goods for the PPK itself and all its PPS
    ppk_own: Mapping[str, Mapping[str, int]]  # PPK node -> goods the PPK keeps
    pps_goods: Mapping[str, Mapping[str, int]]  # PPS node -> goods
    pps_ppk: Mapping[str, str]
    start_minute_of_day: int  # local clock time of the plan start, in minutes after midnight
    ppk_deadline: int
    pps_deadline: int
    settings: SearchSettings
    state: DispatchState = DispatchState()
    pps_kits: Mapping[str, tuple[Mapping[str, int], ...]] = field(
        default_factory=dict
    )  # PPS -> kits, TPS 1 first
    # PPS -> its assign rule: its goods go warehouse -> the rule's port -> the PPS, and are not in its PPK's goods
    assigned: Mapping[str, Assignment] = field(default_factory=dict)


@dataclass(frozen=True)
class Visit:
    node_id: str
    arrival: int
    departure: int
    deliver: Mapping[str, int] = field(default_factory=dict)
    load: Mapping[str, int] = field(default_factory=dict)
    tps_kits: tuple[int, ...] = ()  # at a PPS: the TPS numbers of the kits handed over
    kit_count: int = 0  # TPS kits handed over here (at a PPS, PPK or port): the handling time depends on it


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
    failure: str = ""  # set when the planner itself failed on this kabupaten: every stop is then unserved


# ---------------------------------------------------------------- goods arithmetic


def integer_load(items: Mapping[str, int], units: Mapping[str, Item]) -> tuple[int, int]:
    """Weight in grams and volume in cm3, as the solver sees them (exact integers, no rounding drift)."""
    grams = sum(q * round(units[i].unit_kg * GRAMS) for i, q in items.items())
    cm3 = sum(q * round(units[i].unit_m3 * CM3) for i, q in items.items())
    return grams, cm3


def vehicle_capacity(capacity_kg: float, capacity_m3: float) -> tuple[int, int]:
    """A vehicle's capacity as the engine's integers: (grams, cm3), rounded down."""
    return math.floor(capacity_kg * GRAMS), math.floor(capacity_m3 * CM3)


def split_goods(
    items: Mapping[str, int], units: Mapping[str, Item], cap_kg: float, cap_m3: float
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


def _fits(size: tuple[int, int], room: Sequence[int]) -> bool:
    return size[0] <= room[0] and size[1] <= room[1]


def split_kits(
    items: Mapping[str, int],
    kits: Sequence[Kit],
    units: Mapping[str, Item],
    cap_kg: float,
    cap_m3: float,
) -> list[tuple[dict[str, int], tuple[Kit, ...]]]:
    """Split goods into loads that each fit one vehicle, every TPS kit whole: (items, kits) per load.

    The kits go first, each into the first load with room (so a load holds mostly consecutive TPS);
    the items that are not in a kit fill the room left, in whole units (bulkiest first), then new loads.
    """
    capacity = vehicle_capacity(cap_kg, cap_m3)
    if _fits(integer_load(items, units), capacity):
        return [(dict(items), tuple(kits))]
    loose = dict(items)
    loads: list[tuple[dict[str, int], list[Kit], list[int]]] = []
    for kit in kits:
        size = integer_load(kit.items, units)
        if not _fits(size, capacity):
            raise ValueError(f"the TPS kit {kit.number} of {kit.pps} does not fit a vehicle")
        target = next((load for load in loads if _fits(size, load[2])), None)
        if target is None:
            target = ({}, [], list(capacity))
            loads.append(target)
        target[1].append(kit)
        target[2][0] -= size[0]
        target[2][1] -= size[1]
        for item, qty in kit.items.items():
            target[0][item] = target[0].get(item, 0) + qty
            loose[item] = loose.get(item, 0) - qty
    if any(q < 0 for q in loose.values()):
        raise ValueError("the kits hold more than the goods")
    loose = {i: q for i, q in loose.items() if q}
    size = {i: integer_load({i: 1}, units) for i in loose}
    order = sorted(loose, key=lambda i: (-max(size[i][0] / capacity[0], size[i][1] / capacity[1]), i))
    for item in order:
        left = loose[item]
        unit_g, unit_cm3 = size[item]
        if not _fits(size[item], capacity):
            raise ValueError(f"one unit of {item} does not fit a vehicle")
        while left:
            target = next((load for load in loads if _fits(size[item], load[2])), None)
            if target is None:
                target = ({}, [], list(capacity))
                loads.append(target)
            room = target[2]
            fit = min(left, room[0] // unit_g if unit_g else left, room[1] // unit_cm3 if unit_cm3 else left)
            target[0][item] = target[0].get(item, 0) + fit
            room[0] -= fit * unit_g
            room[1] -= fit * unit_cm3
            left -= fit
    return [(dict(sorted(goods.items())), tuple(kit_list)) for goods, kit_list, _ in loads if goods]


def kits_within(goods: Mapping[str, int], kits: Sequence[Kit]) -> tuple[Kit, ...]:
    """The kits, in order, that the goods still hold whole (all of them, unless a re-plan moved some).

    When a re-plan moved some kits of a PPK on (the goods say how much is left, not which kits), the smallest
    kits are matched first: taking them in TPS order could leave out kits the goods do hold (a kit counted
    short makes its handling time short)."""
    left = dict(goods)
    chosen = set()
    for index in sorted(range(len(kits)), key=lambda k: (sum(kits[k].items.values()), k)):
        kit = kits[index]
        if all(left.get(i, 0) >= q for i, q in kit.items.items()):
            chosen.add(index)
            for i, q in kit.items.items():
                left[i] -= q
    return tuple(kit for index, kit in enumerate(kits) if index in chosen)


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
    warm_routes: Mapping[tuple[str, int], tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    driving: Mapping[str, Driving] = field(default_factory=dict)  # vehicle id -> its account at `available`
    rounds: int = READBACK_ROUNDS  # solves of one origin's part at most (see _solve_origin)


@dataclass
class _LayerOutcome:
    trips: list[Trip]
    arrivals: dict[int, int]  # shipment index -> latest arrival of its loads (departure after unloading)
    missed: dict[int, Missed]
    stats: dict
    driving: dict[str, Driving] = field(default_factory=dict)  # vehicle id -> its account after its last trip
    # shipment index -> what its trips delivered (all of it, or part of a missed shipment's loads)
    delivered: dict[int, Delivered] = field(default_factory=dict)
    # load (stop) index of the layer's problem -> vehicles the exact schedule found it late on (_solve_origin)
    late_on: dict[int, set[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivered:
    """Goods of one shipment that trips delivered: the items, the TPS kits among them, and the minute the last
    load was unloaded."""

    items: Mapping[str, int]
    kits: tuple[Kit, ...]
    done: int

    def plus(self, other: Delivered | None) -> Delivered:
        if other is None:
            return self
        return Delivered(
            add_goods(self.items, other.items), self.kits + other.kits, max(self.done, other.done)
        )


@dataclass(frozen=True)
class LayerProblem:
    """A layer as a routing problem, and what is needed to read the engine's routes back as trips.

    `loads[i]` is stop i of the problem: the shipment it belongs to, the goods of that load and the TPS kits
    among them (whole, never split: the handling time at the stop depends on them); `trip_owner[r]`
    is vehicle row r: the physical vehicle and its trip number. `missed` holds the shipments that were left out
    before routing (no vehicle can carry them, or none can arrive before the deadline).
    """

    layer: _Layer
    problem: RoutingProblem | None  # None: nothing to route
    loads: tuple[tuple[int, dict[str, int], tuple[Kit, ...]], ...]
    trip_owner: tuple[tuple[VehicleSpec, int], ...]
    candidates: Mapping[int, tuple[VehicleSpec, ...]]
    missed: Mapping[int, Missed]
    trips_per_vehicle: int


def _earliest_arrival(
    layer: _Layer, shipment: Shipment, able: Sequence[VehicleSpec], paths: Mapping[str, PathMatrix], day: int
) -> int:
    """The earliest minute any of `able` can arrive at the shipment's destination (loading included), laid out
    by the driving rules (`schedule_trip`)."""
    return min(
        schedule_trip(
            v.kind,
            max(layer.release.get(v.base, 0), layer.available.get(v.vehicle_id, 0)),
            [paths[v.type_id].path_minutes(v.base, shipment.destination)],
            [v.kind.load_min, 0],
            day,
        )[0][1][0]
        for v in able
    )


def _too_late(shipment: Shipment, earliest: int, part: str = "") -> Missed:
    return Missed(
        shipment.destination,
        "too_late",
        f"the fastest vehicle from {shipment.origin} arrives {earliest - shipment.deadline} min after "
        f"the deadline{part}",
    )


def _layer_loads(
    layer: _Layer, task: KabupatenTask, paths: Mapping[str, PathMatrix]
) -> tuple[
    list[tuple[int, dict[str, int], tuple[Kit, ...]]], dict[int, tuple[VehicleSpec, ...]], dict[int, Missed]
]:
    """Split each shipment into vehicle loads, each TPS kit whole in one load (`split_kits`); shipments no
    vehicle can carry in time are missed instead.

    A shipment whose deadline falls before the earliest possible arrival never reaches the engine (its time
    window would be empty): it is missed as too_late, and the rest of the layer is planned."""
    units = {u.id: u for u in task.items}
    loads: list[tuple[int, dict[str, int], tuple[Kit, ...]]] = []
    candidates: dict[int, tuple[VehicleSpec, ...]] = {}
    missed: dict[int, Missed] = {}
    for s_index, shipment in enumerate(layer.shipments):
        able = _able(shipment, layer.vehicles, paths)
        candidates[s_index] = able
        if not able:
            missed[s_index] = Missed(
                shipment.destination, "no_vehicle", f"no vehicle at {shipment.origin} can get there and back"
            )
            continue
        earliest = _earliest_arrival(layer, shipment, able, paths, task.start_minute_of_day)
        if earliest > shipment.deadline:
            missed[s_index] = _too_late(shipment, earliest)
            continue
        for load, kits in _split_for(shipment, able, units):
            loads.append((s_index, load, kits))
    return loads, candidates, missed


def _able(
    shipment: Shipment, vehicles: Sequence[VehicleSpec], paths: Mapping[str, PathMatrix]
) -> tuple[VehicleSpec, ...]:
    """The vehicles that may carry a shipment: based at its origin, of its pinned type if any, and able to get
    to its destination and back."""
    return tuple(
        v
        for v in vehicles
        if v.base == shipment.origin
        and shipment.pinned_type in ("", v.type_id)
        and paths[v.type_id].there_and_back(shipment.origin, shipment.destination)
    )


def _split_for(
    shipment: Shipment, able: Sequence[VehicleSpec], units: Mapping[str, Item]
) -> list[tuple[dict[str, int], tuple[Kit, ...]]]:
    """The shipment's loads, each small enough for every vehicle that can take it (so a PPK's 4WD can carry any
    load of a desa its open-bed pikap also reaches); a vehicle with more room takes several loads on one trip.
    Loads sized for the biggest vehicle instead left the smaller ones idle and the biggest out of trips.
    When a TPS kit does not fit the smallest vehicle, the loads are sized for the biggest."""
    kg = min(v.kind.capacity_kg for v in able)
    m3 = min(v.kind.capacity_m3 for v in able)
    try:
        return split_kits(shipment.items, shipment.kits, units, kg, m3)
    except ValueError:
        biggest = max((v.kind for v in able), key=lambda k: (k.capacity_kg * k.capacity_m3, k.type_id))
        return split_kits(shipment.items, shipment.kits, units, biggest.capacity_kg, biggest.capacity_m3)


def _vehicle_classes(
    layer: _Layer, type_ids: Sequence[str], paths: Mapping[str, PathMatrix], locations: Sequence[str]
) -> list[VehicleClass]:
    """Distance (m) and duration (min, loading at the bases included) matrices per vehicle type."""
    kinds = {v.type_id: v.kind for v in layer.vehicles}
    bases = {v.base for v in layer.vehicles}
    classes = []
    for type_id in type_ids:
        kind, matrix = kinds[type_id], paths[type_id]
        hours = np.array([[matrix.hours_between(a, b) for b in locations] for a in locations])
        km = np.array([[matrix.km_between(a, b) for b in locations] for a in locations])
        reachable = np.isfinite(hours)
        loading = np.array([kind.load_min if n in bases else 0 for n in locations])[:, None]
        travel = np.ceil(hours * 60 * travel_padding(kind) - 1e-9)  # the driving limit, see travel_padding
        duration = np.where(reachable, travel + loading, UNREACHABLE).astype(np.int64)
        distance = np.where(reachable, np.round(km * 1000), UNREACHABLE).astype(np.int64)
        np.fill_diagonal(duration, 0)
        np.fill_diagonal(distance, 0)
        classes.append(VehicleClass(type_id, distance, duration))
    return classes


def _trips_per_base(
    layer: _Layer, loads: Sequence[tuple[int, dict[str, int], tuple[Kit, ...]]], units: Mapping[str, Item]
) -> dict[str, int]:
    """How many chained trips each vehicle of a base may drive: enough to carry the base's goods, plus a spare
    (whole stops do not pack loads perfectly), at most MAX_TRIPS."""
    base_load: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for s_index, load, _ in loads:
        kg, m3 = goods_weight(load, units)
        base_load[layer.shipments[s_index].origin][0] += kg
        base_load[layer.shipments[s_index].origin][1] += m3
    base_fleet: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for v in layer.vehicles:
        base_fleet[v.base][0] += v.kind.capacity_kg
        base_fleet[v.base][1] += v.kind.capacity_m3
    return {
        base: max(1, min(MAX_TRIPS, 2 + math.ceil(max(kg / base_fleet[base][0], m3 / base_fleet[base][1]))))
        for base, (kg, m3) in base_load.items()
    }


def _vehicle_rows(
    layer: _Layer, task: KabupatenTask, type_ids: Sequence[str], loc_index: Mapping[str, int], trips_at
) -> tuple[list[Vehicle], list[tuple[VehicleSpec, int]], dict[str, list[int]]]:
    """One engine vehicle per trip of each physical vehicle, chained (`follows`) so trips run one after another."""
    horizon = task.pps_deadline + 2 * 1440
    vehicles: list[Vehicle] = []
    trip_owner: list[tuple[VehicleSpec, int]] = []
    rows_of: dict[str, list[int]] = defaultdict(list)
    for spec in layer.vehicles:
        earliest = max(layer.release.get(spec.base, 0), layer.available.get(spec.vehicle_id, 0))
        if spec.base not in trips_at or earliest >= horizon:
            # free only after the horizon: no row (the engine rejects a start past it); a load is only built
            # when some vehicle can bring it by its deadline (`_layer_loads`), so that one has rows
            continue
        kind = spec.kind
        first_trip = layer.trips_used.get(spec.vehicle_id, 0) + 1
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
                    breaks=nights(planning_hours(kind), task.start_minute_of_day, horizon),
                    follows=previous,
                )
            )
            previous = len(vehicles) - 1
            trip_owner.append((spec, first_trip + k))
    return vehicles, trip_owner, rows_of


def build_layer_problem(
    layer: _Layer,
    task: KabupatenTask,
    paths: Mapping[str, PathMatrix],
    barred: Mapping[int, set[str]] | None = None,
) -> LayerProblem:
    """The routing problem of one layer: a stop per load, a vehicle row per trip, windows from the deadlines.

    Parameters: `layer` the shipments and vehicles; `task` the kabupaten (items, clock, deadlines); `paths` the
    shortest paths per vehicle type; `barred`: per load, vehicles it may not go on (see `_solve_origin`).
    Returns the problem (None when nothing can be routed) and the maps back."""
    barred = barred or {}
    units = {u.id: u for u in task.items}
    loads, candidates, missed = _layer_loads(layer, task, paths)
    if not loads:
        return LayerProblem(layer, None, (), (), candidates, missed, 0)
    type_ids = sorted({v.type_id for v in layer.vehicles})
    locations = sorted({v.base for v in layer.vehicles} | {s.destination for s in layer.shipments})
    loc_index = {n: i for i, n in enumerate(locations)}
    trips_at = _trips_per_base(layer, loads, units)
    vehicles, trip_owner, rows_of = _vehicle_rows(layer, task, type_ids, loc_index, trips_at)
    stops = []
    for l_index, (s_index, load, kits) in enumerate(loads):
        shipment = layer.shipments[s_index]
        able = [v for v in candidates[s_index] if v.vehicle_id not in barred.get(l_index, ())]
        stops.append(
            Stop(
                loc=loc_index[shipment.destination],
                demand=integer_load(load, units),
                service=max(handling_minutes(v.kind, len(kits)) for v in candidates[s_index]),
                window=(0, shipment.deadline),
                allowed_vehicles=tuple(i for v in able for i in rows_of[v.vehicle_id]),
                penalty=DROP_PENALTY,
                name=shipment.destination,
            )
        )
    problem = RoutingProblem(
        vehicle_classes=tuple(_vehicle_classes(layer, type_ids, paths, locations)),
        vehicles=tuple(vehicles),
        stops=tuple(stops),
        horizon=task.pps_deadline + 2 * 1440,
        dimensions=("g", "cm3"),
        name=f"{task.kabupaten_code} {layer.name}",
    )
    return LayerProblem(
        layer, problem, tuple(loads), tuple(trip_owner), candidates, missed, max(trips_at.values())
    )


def _lay_out_trip(
    spec: VehicleSpec,
    trip_no: int,
    tier: int,
    stops: Sequence[tuple[str, Mapping[str, int], tuple[Kit, ...]]],
    task: KabupatenTask,
    paths: Mapping[str, PathMatrix],
    start: int,
    driving: Driving | None,
) -> tuple[Trip, Driving]:
    """A trip of `spec` that sets out at `start` with the driver's account `driving` and delivers `stops`
    ((destination, goods, TPS kits) in order): base, each delivery with its arrival and departure, base; the legs
    driven. The times are laid out leg by leg by the driving rules (`schedule_trip`)."""
    kind, matrix = spec.kind, paths[spec.type_id]
    nodes = [spec.base, *(destination for destination, _, _ in stops), spec.base]
    handling = [kind.load_min, *(handling_minutes(kind, len(kits)) for _, _, kits in stops), 0]
    minutes = [matrix.path_minutes(a, b) for a, b in zip(nodes, nodes[1:], strict=False)]
    times, driving = schedule_trip(kind, start, minutes, handling, task.start_minute_of_day, driving)
    carried = add_goods(*(load for _, load, _ in stops))
    visits = [Visit(spec.base, times[0][0], times[0][1], load=carried)]
    for (node, load, kits), (arrival, departure) in zip(stops, times[1:-1], strict=True):
        numbers = tuple(k.number for k in kits) if is_pps(node) else ()
        visits.append(Visit(node, arrival, departure, deliver=load, tps_kits=numbers, kit_count=len(kits)))
    visits.append(Visit(spec.base, times[-1][0], times[-1][0]))
    legs = [leg for a, b in zip(nodes, nodes[1:], strict=False) for leg in matrix.path_legs(a, b)]
    return Trip(spec.vehicle_id, spec.type_id, spec.base, tier, trip_no, tuple(visits), tuple(legs)), driving


def _read_trip(
    built: LayerProblem,
    route,
    task: KabupatenTask,
    paths: Mapping[str, PathMatrix],
    start: int,
    driving: Driving | None,
    keep: Sequence[int],
) -> tuple[Trip, Driving]:
    """One engine route as a trip that sets out at `start` (`_lay_out_trip`), with the deliveries `keep`
    (indices of route.visits). The times are not taken from the engine, whose work clock cannot see a night or a
    break spent at a node."""
    spec, trip_no = built.trip_owner[route.vehicle]
    stops = []
    for k in keep:
        s_index, load, kits = built.loads[route.visits[k].stop]
        stops.append((built.layer.shipments[s_index].destination, load, kits))
    return _lay_out_trip(spec, trip_no, built.layer.tier, stops, task, paths, start, driving)


def _read_vehicle(
    built: LayerProblem, routes: Sequence, task: KabupatenTask, paths: Mapping[str, PathMatrix]
) -> tuple[list[tuple[object, Trip, list[int]]], Driving | None, set[int]]:
    """The engine routes of one vehicle (its trips, in order) laid out one after another by the driving rules.

    Each trip sets out when the engine starts it, or as soon as the vehicle is free if a delivery would then be
    late; a delivery late even so is left out of the trip (its load is then missed, and `read_layer` says why).
    Returns (route, trip, indices of the route's visits kept) per trip driven, the account after the last, and
    the loads left out (their stop indices)."""
    layer = built.layer
    spec = built.trip_owner[routes[0].vehicle][0]
    free = max(layer.release.get(spec.base, 0), layer.available.get(spec.vehicle_id, 0))
    driving, last = layer.driving.get(spec.vehicle_id), layer.available.get(spec.vehicle_id, 0)
    out: list[tuple[object, Trip, list[int]]] = []
    left_out: set[int] = set()
    for route in routes:
        keep = list(range(len(route.visits)))
        while keep:
            for start in dict.fromkeys((max(route.start_time, free), free)):
                account = after_stop(spec.kind, driving, last, start, 0) if driving else None
                trip, after = _read_trip(built, route, task, paths, start, account, keep)
                late = [
                    k
                    for k, v in zip(keep, trip.visits[1:-1], strict=True)
                    if v.arrival > _due(built, route, k)
                ]
                if not late:
                    break
            if not late:
                break
            left_out.update(route.visits[k].stop for k in late)
            keep = [k for k in keep if k not in late]
        if keep:
            out.append((route, trip, keep))
            free = last = trip.visits[-1].arrival
            driving = after
    return out, driving, left_out


def _due(built: LayerProblem, route, k: int) -> int:
    """The deadline of the k-th visit of an engine route."""
    return built.layer.shipments[built.loads[route.visits[k].stop][0]].deadline


def read_layer(
    built: LayerProblem, solution, task: KabupatenTask, paths: Mapping[str, PathMatrix]
) -> _LayerOutcome:
    """The engine's solution of a layer as trips, the arrival of each shipment, and the shipments missed (with
    the reason). The engine starts each trip as late as its route allows, so the earliest start among a
    base's trips is the latest its goods may arrive for these trips to stand."""
    layer = built.layer
    trips: list[Trip] = []
    delivered: dict[int, Delivered] = {}
    served_loads: dict[int, int] = defaultdict(int)
    late_on: dict[int, set[str]] = defaultdict(set)
    by_vehicle: dict[str, list] = defaultdict(list)
    for route in solution.routes:
        if route.visits:
            by_vehicle[built.trip_owner[route.vehicle][0].vehicle_id].append(route)
    driving: dict[str, Driving] = {}
    for vehicle_id, routes in by_vehicle.items():
        read, account, late = _read_vehicle(built, sorted(routes, key=lambda r: r.vehicle), task, paths)
        if account is not None:
            driving[vehicle_id] = account
        for stop in late:
            late_on[stop].add(vehicle_id)
        for route, trip, keep in read:
            trips.append(trip)
            for k, visit in zip(keep, trip.visits[1:-1], strict=True):
                s_index, load, kits = built.loads[route.visits[k].stop]
                delivered[s_index] = Delivered(load, kits, visit.departure).plus(delivered.get(s_index))
                served_loads[s_index] += 1
    missed = dict(built.missed)
    expected: dict[int, int] = defaultdict(int)
    for s_index, _, _ in built.loads:
        expected[s_index] += 1
    for s_index, count in expected.items():
        if served_loads[s_index] < count:
            missed[s_index] = _why_dropped(
                layer,
                s_index,
                built.candidates[s_index],
                paths,
                served_loads[s_index],
                count,
                task.start_minute_of_day,
            )
    arrivals = {s_index: d.done for s_index, d in delivered.items() if s_index not in missed}
    stats = {
        "layer": layer.name,
        "stops": len(built.loads),
        "vehicles": len(layer.vehicles),
        "trips_per_vehicle": built.trips_per_vehicle,
        "wall_s": round(solution.wall_time_s, 2),
        "status": solution.status,
    }
    return _LayerOutcome(trips, arrivals, missed, stats, driving, delivered, dict(late_on))


def _solve_layer(
    layer: _Layer, task: KabupatenTask, paths: Mapping[str, PathMatrix], time_limit: float
) -> _LayerOutcome:
    """Solve a layer. A vehicle only carries goods from its own base, so a layer with several origins (the PPKs
    of tier 2, the ports) falls apart into one routing problem per origin: each is solved on its own, which
    the search handles far better than one problem of all of them (whose local moves rarely cross a base's
    fleet), and the outcomes are merged. The time is shared by stops; in deterministic mode every part keeps
    the whole limit, which is then only a safety net."""
    origins = sorted({s.origin for s in layer.shipments})
    if len(origins) <= 1:
        return _solve_origin(layer, task, paths, time_limit)
    parts = []
    for origin in origins:
        indices = [i for i, s in enumerate(layer.shipments) if s.origin == origin]
        part = replace(
            layer,
            shipments=[layer.shipments[i] for i in indices],
            vehicles=[v for v in layer.vehicles if v.base == origin],
        )
        share = len(indices) / len(layer.shipments)
        limit = time_limit if task.settings.deterministic else max(MIN_PART_S, time_limit * share)
        parts.append((indices, _solve_origin(part, task, paths, limit)))
    return _merge_outcomes(layer, parts)


def _merge_outcomes(layer: _Layer, parts: Sequence[tuple[list[int], _LayerOutcome]]) -> _LayerOutcome:
    """The outcomes of a layer's parts (see `_solve_layer`) as one, shipment indices back to the layer's."""
    trips: list[Trip] = []
    arrivals: dict[int, int] = {}
    missed: dict[int, Missed] = {}
    driving: dict[str, Driving] = {}
    stats: dict = {"layer": layer.name, "stops": 0, "vehicles": len(layer.vehicles), "parts": len(parts)}
    statuses, wall, per_vehicle = set(), 0.0, 0
    delivered: dict[int, Delivered] = {}
    for indices, outcome in parts:
        trips += outcome.trips
        arrivals.update({indices[i]: minute for i, minute in outcome.arrivals.items()})
        missed.update({indices[i]: miss for i, miss in outcome.missed.items()})
        delivered.update({indices[i]: d for i, d in outcome.delivered.items()})
        driving.update(outcome.driving)
        stats["stops"] += outcome.stats.get("stops", 0)
        wall += outcome.stats.get("wall_s", 0.0)
        per_vehicle = max(per_vehicle, outcome.stats.get("trips_per_vehicle", 0))
        if "status" in outcome.stats:
            statuses.add(outcome.stats["status"])
    stats.update({"trips_per_vehicle": per_vehicle, "wall_s": round(wall, 2)})
    if statuses:
        stats["status"] = "/".join(sorted(statuses))
    return _LayerOutcome(trips, arrivals, missed, stats, driving, delivered)


def _solve_origin(
    layer: _Layer, task: KabupatenTask, paths: Mapping[str, PathMatrix], time_limit: float
) -> _LayerOutcome:
    """Solve a layer of one origin. The engine plans with padded travel and short days (see `travel_padding`),
    which the exact schedule of a trip read back (`_read_vehicle`) may still miss: a load it then finds late is
    left out. Up to `layer.rounds` times in all, the layer is solved again with each such load barred from the
    vehicles it came late on, and the outcome that leaves the fewest loads out is kept (Long Pahangai, Mahakam
    Ulu: the engine had a longboat arrive at minute 3268, by the rules it came after the 3600 deadline, and the
    desa was left out while the PPK's speedboat stood idle; issue 13). A load the search itself left out for
    capacity is searched again the same way, with the next seed: the PPK's own vehicles, all still free, get
    another chance at it before the left-overs go to what is free after (one seed in ten left a second load of
    Muara Kaman's 181 km desa 64.02.11.2004 out, and no vehicle was free for it later)."""
    barred: dict[int, set[str]] = defaultdict(set)
    best: _LayerOutcome | None = None
    for round_no in range(layer.rounds):
        built = build_layer_problem(layer, task, paths, barred)
        if built.problem is None:
            return _LayerOutcome([], {}, dict(built.missed), {"layer": layer.name, "stops": 0})
        warm = _warm_routes(layer, layer.warm_routes or task.state.warm_routes, built)
        limit = time_limit if round_no == 0 or task.settings.deterministic else time_limit / 2
        settings = replace(task.settings, time_limit_s=limit, seed=task.settings.seed + round_no)
        if len(built.loads) <= TINY_LOADS:
            # guided local search finds no new solution on a few loads, so not even the stall limit stops it: it
            # ran to the time limit for nothing; greedy descent stops at its local optimum (still deterministic)
            settings = replace(settings, metaheuristic="greedy-descent")
        outcome = read_layer(built, solve(built.problem, settings, warm), task, paths)
        if round_no:
            outcome.stats["readback_rounds"] = round_no + 1
        if best is None or _left_out(outcome) < _left_out(best):
            best = outcome
        if not outcome.late_on and not any(m.reason == "capacity" for m in outcome.missed.values()):
            break
        for stop, vehicle_ids in outcome.late_on.items():
            barred[stop] |= vehicle_ids
    return best


def _left_out(outcome: _LayerOutcome) -> tuple[int, int]:
    """How much of a layer an outcome leaves out: shipments missed, then shipments not delivered whole."""
    return len(outcome.missed), sum(1 for i in outcome.missed if i not in outcome.delivered)


def _warm_routes(
    layer: _Layer, warm_routes: Mapping[tuple[str, int], tuple[tuple[str, ...], ...]], built: LayerProblem
) -> list[list[int]] | None:
    """Earlier trips (destinations per trip, per vehicle and tier) as stop indices per vehicle row, each
    destination's loads used once and only on a row allowed to take them; None when there are none."""
    if not warm_routes:
        return None
    unused: dict[str, list[int]] = defaultdict(list)
    for index, stop in enumerate(built.problem.stops):
        unused[stop.name].append(index)
    routes: list[list[int]] = []
    seen: dict[str, int] = defaultdict(int)
    for row, (spec, _) in enumerate(built.trip_owner):
        previous = warm_routes.get((spec.vehicle_id, layer.tier), ())
        k = seen[spec.vehicle_id]
        seen[spec.vehicle_id] += 1
        route = []
        for destination in previous[k] if k < len(previous) else ():
            allowed = [i for i in unused[destination] if row in built.problem.stops[i].allowed_vehicles]
            if allowed:
                unused[destination].remove(allowed[0])
                route.append(allowed[0])
        routes.append(route)
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
    earliest = _earliest_arrival(layer, shipment, able, paths, day_start)
    part = f" ({served} of {loads} loads delivered)" if served else ""
    if earliest > shipment.deadline:
        return _too_late(shipment, earliest, part)
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
    """('direct', None), ('hub', port) or (reason, None) for goods from origin to destination.

    Direct when a vehicle of the origin goes there and back, unless a port saves more than DIRECT_SLACK_H
    (a road detour around water without a bridge). Among the ports whose boats can take the goods on, a PPK's
    vehicles (tier 2) hand over at the nearest one they reach within MAX_HANDOVER_KM; only if there is none do
    they drive further (to the fastest)."""
    at_origin = [v for v in task.vehicles if v.base == origin and tier in v.kind.tiers]
    direct = min(
        (_there_and_back_hours(paths[v.type_id], origin, destination) for v in at_origin), default=math.inf
    )
    if direct <= DIRECT_SLACK_H:
        return "direct", None
    best: tuple[bool, float, float, str] | None = None
    vessels = [v for v in task.vehicles if is_hub(v.base) and tier in v.kind.tiers]
    for hub in sorted({v.base for v in vessels}):
        to_hub = min(
            ((_there_and_back_hours(paths[v.type_id], origin, hub), v.type_id) for v in at_origin),
            default=(math.inf, ""),
        )
        onward = [_there_and_back_hours(paths[v.type_id], hub, destination) for v in vessels if v.base == hub]
        cost = to_hub[0] + min(onward, default=math.inf)
        if not np.isfinite(cost):
            continue
        far = tier == 2 and paths[to_hub[1]].km_between(origin, hub) > MAX_HANDOVER_KM
        key = (far, to_hub[0] if tier == 2 else cost, cost, hub)
        if best is None or key < best:
            best = key
    if np.isfinite(direct) and (best is None or direct <= best[2] + DIRECT_SLACK_H):
        return "direct", None
    if best is not None:
        return "hub", best[3]
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
    deadline: int | Mapping[str, int],
    tier: int,
    paths: Mapping[str, PathMatrix],
    origin_fleet: Sequence[VehicleSpec],
    kit_count: Mapping[str, int] | None = None,
) -> int:
    """The latest arrival at a hub that still lets its fastest vessel reach every destination in time.

    `deadline`: one for all destinations, or one per destination (the coupled PPK deadlines differ);
    `kit_count`: TPS kits per destination, which lengthen the handling at the hub and at each destination."""
    return min(_latest_drops(task, hub, dests, deadline, tier, paths, origin_fleet, kit_count).values())


def _latest_drops(
    task: KabupatenTask,
    hub: str,
    dests: Sequence[str],
    deadline: int | Mapping[str, int],
    tier: int,
    paths: Mapping[str, PathMatrix],
    origin_fleet: Sequence[VehicleSpec],
    kit_count: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Per destination, the latest arrival at the hub that lets the hub's fastest vessel make that destination's
    own deadline (the unloading at the hub is that of the whole drop). See `_latest_drop`."""
    day = task.start_minute_of_day
    kit_count = kit_count or {}
    due = deadline if isinstance(deadline, Mapping) else dict.fromkeys(dests, deadline)
    total_kits = sum(kit_count.get(d, 0) for d in dests)
    unload = max((handling_minutes(v.kind, total_kits) for v in origin_fleet), default=0)
    latest: dict[str, int] = {}
    for dest in dests:
        best = -(10**9)
        pinned = task.assigned.get(dest)
        for v in task.vehicles:
            if v.base != hub or tier not in v.kind.tiers or (pinned and pinned.type_id != v.type_id):
                continue
            if not np.isfinite(paths[v.type_id].hours_between(hub, dest)):
                continue
            handling = (v.kind.load_min, handling_minutes(v.kind, kit_count.get(dest, 0)))
            minutes = paths[v.type_id].path_minutes(hub, dest)
            start = min(
                latest_setting_out(v.kind, due[dest], minutes, handling, day),
                _engine_setting_out(v.kind, due[dest], minutes, handling, day),
            )
            best = max(best, latest_start(start, unload, v.kind.operating_hours, day))
        latest[dest] = min(due[dest], best)
    return latest


def _engine_setting_out(
    kind: VehicleType, end: int, minutes: Sequence[float], handling: tuple[int, int], day: int
) -> int:
    """The latest start of a trip done by `end` as the routing engine sees it (travel padded by
    `travel_padding`, days closing at `planning_hours`): a hub drop due by the exact schedule alone can come too
    late for the engine, which then leaves the destination out (Maratua's goods at Tanjung Redeb, issue 13)."""
    work = math.ceil(sum(minutes) * travel_padding(kind)) + sum(handling)
    return latest_start(end, work, planning_hours(kind), day)


@dataclass(frozen=True)
class _Context:
    """What every pass over a kabupaten shares: its warehouse, the shortest paths per vehicle type, and the TPS
    kits still to deliver per destination (a PPS: its own, TPS 1 first; a PPK: those of all its PPS)."""

    task: KabupatenTask
    warehouse: str
    paths: Mapping[str, PathMatrix]
    any_mode: PathMatrix
    kits: Mapping[str, tuple[Kit, ...]] = field(default_factory=dict)

    @property
    def n_stops(self) -> int:
        return len(self.task.ppk_goods) + len(self.task.pps_goods)

    def kits_in(self, destination: str, goods: Mapping[str, int]) -> tuple[Kit, ...]:
        """The TPS kits for `destination` that `goods` hold whole."""
        return kits_within(goods, self.kits.get(destination, ()))


def _destination_kits(task: KabupatenTask) -> dict[str, tuple[Kit, ...]]:
    """The TPS kits still to deliver, per PPS (those a re-plan found delivered left out), and per PPK the kits of
    all its desa (`kits_within` finds those its goods still hold)."""
    done = task.state.kits_done
    pps_kits = {
        pps: tuple(
            Kit(pps, n, dict(items)) for n, items in enumerate(kits, start=1) if n not in done.get(pps, ())
        )
        for pps, kits in sorted(task.pps_kits.items())
    }
    # a PPK's goods may hold kits its desa already have in the plan (a re-plan keeps a PPK's trips while its
    # goods are planned again): all its desa's kits are candidates, the goods tell which are still to come
    ppk_kits: dict[str, list[Kit]] = defaultdict(list)
    for pps, kits in sorted(task.pps_kits.items()):
        if pps in task.pps_ppk and pps not in task.assigned:
            ppk_kits[task.pps_ppk[pps]].extend(
                Kit(pps, n, dict(items)) for n, items in enumerate(kits, start=1)
            )
    return {**pps_kits, **{ppk: tuple(kits) for ppk, kits in ppk_kits.items()}}


def _context(task: KabupatenTask) -> _Context:
    network = task.network
    wh = network.warehouse_of(task.kabupaten_code)
    hubs = sorted({v.base for v in task.vehicles if is_hub(v.base)})
    bases = sorted({v.base for v in task.vehicles})
    stock_destinations = {s.destination for s in task.state.hub_stock}
    sources = sorted({wh, *task.ppk_goods, *task.pps_goods, *hubs, *bases, *stock_destinations})
    paths = {
        type_id: shortest_paths(network, kind.speeds, sources=sources)
        for type_id, kind in sorted({v.type_id: v.kind for v in task.vehicles}.items())
    }
    any_mode = shortest_paths(network, ALL_MODES_SPEEDS, sources=sources)
    return _Context(task, wh, paths, any_mode, _destination_kits(task))


@dataclass
class _Pass:
    """One plan of a kabupaten being made, layer by layer: the trips and unserved stops so far, when each vehicle
    is free again and how many trips it has driven. `ppk_deadline` overrides the deadline of some PPKs (the
    tier coupling); `warm_routes` seed tier 2 with the trips of the backward pass."""

    ctx: _Context
    budget: float
    ppk_deadline: Mapping[str, int] = field(default_factory=dict)
    warm_routes: Mapping[tuple[str, int], tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    trips: list[Trip] = field(default_factory=list)
    unserved: list[Missed] = field(default_factory=list)
    layers: list[dict] = field(default_factory=list)
    available: dict[str, int] = field(default_factory=dict)
    trips_used: dict[str, int] = field(default_factory=dict)
    driving: dict[str, Driving] = field(default_factory=dict)  # vehicle id -> its account at `available`
    rounds: int = READBACK_ROUNDS  # solves of one origin's part of a layer at most (see _solve_origin)

    @classmethod
    def start(cls, ctx: _Context, budget: float, ppk_deadline=None, warm_routes=None) -> _Pass:
        state = ctx.task.state
        return cls(
            ctx,
            budget,
            dict(ppk_deadline or {}),
            dict(warm_routes or {}),
            available=dict(state.vehicle_free),
            trips_used=dict(state.trips_done),
            driving=dict(state.driving),
        )

    def deadline_of(self, destination: str, deadline: int) -> int:
        return min(deadline, self.ppk_deadline.get(destination, deadline))

    def run(
        self, name: str, tier: int, shipments: list[Shipment], vehicles: list[VehicleSpec], release
    ) -> _LayerOutcome:
        """Solve one layer with its share of the time budget and book its trips.

        What the search left out for "capacity" is tried once more on its own, with the vehicles free after the
        trips just booked: on a short budget the search can leave a stop out that a truck standing idle could
        take (Kombeng, Kutai Timur: dropped at 3 and 10 s, served at 30 s). What is left even then goes load by
        load on trips of its own (`_single_trips`). Only the goods not yet delivered are tried again."""
        outcome = self._solve(name, tier, shipments, vehicles, release)
        for attempt in ("left over", "single trips"):
            left = sorted(i for i, miss in outcome.missed.items() if miss.reason == "capacity")
            if not left:
                break
            rest = [_remainder(shipments[i], outcome.delivered.get(i)) for i in left]
            if attempt == "left over":
                again = self._solve(f"{name} ({attempt})", tier, rest, vehicles, release)
            else:
                again = self._single_trips(f"{name} ({attempt})", tier, rest, vehicles, release)
            outcome = _with_retry(outcome, left, again)
        return outcome

    def _single_trips(
        self, name: str, tier: int, shipments: list[Shipment], vehicles: list[VehicleSpec], release
    ) -> _LayerOutcome:
        """Each load of `shipments` on a trip of its own, by the vehicle of its origin that is back first and
        still arrives in time (laid out by the driving rules): a sure, if dearer, way to a stop the search left
        out. Shipments with the earliest deadline go first; one that not every load of can go is missed."""
        task, paths = self.ctx.task, self.ctx.paths
        units = {u.id: u for u in task.items}
        trips: list[Trip] = []
        delivered: dict[int, Delivered] = {}
        missed: dict[int, Missed] = {}
        for j in sorted(
            range(len(shipments)), key=lambda j: (shipments[j].deadline, shipments[j].destination)
        ):
            shipment = shipments[j]
            able = _able(shipment, vehicles, paths)
            if not able:
                missed[j] = Missed(
                    shipment.destination, "capacity", f"no vehicle at {shipment.origin} can go"
                )
                continue
            for load, kits in _split_for(shipment, able, units):
                options = []
                for v in able:
                    free = self.available.get(v.vehicle_id, 0)
                    start = max(release.get(v.base, 0), free)
                    account = self.driving.get(v.vehicle_id)
                    account = after_stop(v.kind, account, free, start, 0) if account else None
                    trip_no = self.trips_used.get(v.vehicle_id, 0) + 1
                    stop = [(shipment.destination, load, kits)]
                    trip, after = _lay_out_trip(v, trip_no, tier, stop, task, paths, start, account)
                    if trip.visits[1].arrival <= shipment.deadline:
                        options.append((trip.visits[-1].arrival, v.vehicle_id, trip, after))
                if not options:
                    missed[j] = Missed(
                        shipment.destination,
                        "capacity",
                        f"no vehicle at {shipment.origin} is free to get there before the deadline",
                    )
                    break
                _, _, trip, after = min(options, key=lambda option: option[:2])
                self._book([trip], {trip.vehicle_id: after})
                trips.append(trip)
                delivered[j] = Delivered(load, kits, trip.visits[1].departure).plus(delivered.get(j))
        arrivals = {j: d.done for j, d in delivered.items() if j not in missed}
        stats = {"layer": name, "stops": len(shipments), "trips": len(trips)}
        self.layers.append(stats)
        return _LayerOutcome(trips, arrivals, missed, stats, delivered=delivered)

    def _book(self, trips: Sequence[Trip], driving: Mapping[str, Driving]) -> None:
        """Book trips: each vehicle is free again when its last trip is back, with its driving account then."""
        for trip in trips:
            self.available[trip.vehicle_id] = max(
                self.available.get(trip.vehicle_id, 0), trip.visits[-1].arrival
            )
            self.trips_used[trip.vehicle_id] = max(self.trips_used.get(trip.vehicle_id, 0), trip.trip)
        self.driving.update(driving)
        self.trips.extend(trips)

    def _solve(
        self, name: str, tier: int, shipments: list[Shipment], vehicles: list[VehicleSpec], release
    ) -> _LayerOutcome:
        share = max(len(shipments), 1) / max(self.ctx.n_stops, 1)
        warm = {k: v for k, v in self.warm_routes.items() if k[1] == tier}
        layer = _Layer(
            name,
            tier,
            shipments,
            vehicles,
            release,
            dict(self.available),
            dict(self.trips_used),
            warm,
            dict(self.driving),
            self.rounds,
        )
        outcome = _solve_layer(layer, self.ctx.task, self.ctx.paths, max(MIN_LAYER_S, self.budget * share))
        self._book(outcome.trips, outcome.driving)
        self.layers.append(outcome.stats)
        return outcome

    def result(self) -> KabupatenResult:
        return KabupatenResult(
            self.ctx.task.kabupaten_code,
            tuple(sorted(self.trips, key=lambda t: (t.tier, t.vehicle_id, t.trip))),
            tuple(sorted(self.unserved, key=lambda m: m.node_id)),
            tuple(self.layers),
        )


def _remainder(shipment: Shipment, delivered: Delivered | None) -> Shipment:
    """The part of a shipment not yet delivered: its goods less `delivered`, and the TPS kits not among them."""
    if delivered is None:
        return shipment
    items = {i: q - delivered.items.get(i, 0) for i, q in shipment.items.items()}
    done = {(kit.pps, kit.number) for kit in delivered.kits}
    kits = tuple(kit for kit in shipment.kits if (kit.pps, kit.number) not in done)
    return replace(shipment, items={i: q for i, q in items.items() if q > 0}, kits=kits)


def _with_retry(outcome: _LayerOutcome, left: Sequence[int], again: _LayerOutcome) -> _LayerOutcome:
    """A layer's outcome after its shipments `left` (by index) were tried again (`again`, indexed by position
    in `left`): what the retry delivered is added, and a shipment is missed only if the retry missed it too."""
    arrivals, missed, delivered = dict(outcome.arrivals), dict(outcome.missed), dict(outcome.delivered)
    for j, i in enumerate(left):
        if j in again.delivered:
            delivered[i] = again.delivered[j].plus(delivered.get(i))
        if j in again.missed:
            missed[i] = again.missed[j]
        else:
            missed.pop(i)
            arrivals[i] = delivered[i].done
    driving = {**outcome.driving, **again.driving}
    trips = outcome.trips + again.trips
    return _LayerOutcome(trips, arrivals, missed, outcome.stats, driving, delivered)


@dataclass(frozen=True)
class _FirstLeg:
    """The first layer of a tier: direct deliveries and hub drops from the origins, as solved."""

    shipments: list[Shipment]
    outcome: _LayerOutcome


def _first_leg(
    run: _Pass,
    tier: int,
    origin_of: Mapping[str, str],
    goods: Mapping[str, Mapping[str, int]],
    deadline: int,
    release: Mapping[str, int],
) -> _FirstLeg:
    """Solve the origins' vehicles: straight to each destination they can reach, else to the port whose boats
    can (with a drop deadline that leaves the boats time). Destinations with no way are booked unserved."""
    task, ctx = run.ctx.task, run.ctx
    direct, via_hub = [], defaultdict(list)
    kits = {d: ctx.kits_in(d, goods[d]) for d in goods}
    for dest in sorted(goods):
        if dest in task.assigned:
            choice, hub = "hub", task.assigned[dest].base
        else:
            choice, hub = _route_choice(task, origin_of[dest], dest, tier, ctx.paths, ctx.any_mode)
        if choice == "direct":
            due = run.deadline_of(dest, deadline)
            direct.append(Shipment(dest, origin_of[dest], tier, goods[dest], due, kits=kits[dest]))
        elif choice == "hub":
            via_hub[(origin_of[dest], hub)].append(dest)
        else:
            detail = (
                _unreachable_detail(origin_of[dest], ctx.any_mode, dest)
                if choice == "unreachable"
                else f"no vehicle of the needed modes is based at {origin_of[dest]} or at a port"
            )
            run.unserved.append(Missed(dest, choice, detail))
    origins = set(origin_of.values())
    origin_fleet = [v for v in task.vehicles if tier in v.kind.tiers and v.base in origins]
    released = {base: task.state.release(base, minute) for base, minute in release.items()}
    drops = []
    for (origin, hub), dests in sorted(via_hub.items()):
        # each destination's own deadline: one destination's early (coupled) deadline must not become all of
        # theirs, and one the drop cannot make in any case falls back to the calendar's
        due = {d: run.deadline_of(d, deadline) for d in dests}
        counts = {d: len(kits[d]) for d in dests}
        latest_of = _latest_drops(task, hub, dests, due, tier, ctx.paths, origin_fleet, counts)
        at_hub = _fastest_arrival(ctx, origin_fleet, origin, hub, released.get(origin, 0), unload=False)
        given_up = [d for d in dests if latest_of[d] < at_hub and due[d] < deadline]
        if given_up:
            for d in given_up:  # so the boats from the hub plan with the calendar's deadline too
                run.ppk_deadline.pop(d, None)
                due[d] = deadline
            latest_of = _latest_drops(task, hub, dests, due, tier, ctx.paths, origin_fleet, counts)
        latest = min(latest_of.values())
        if latest < 0:
            run.unserved.extend(
                Missed(d, "too_late", f"the boats at {hub} cannot make the deadline") for d in dests
            )
            continue
        dropped = add_goods(*(goods[d] for d in dests))
        drop_kits = tuple(k for d in dests for k in kits[d])
        drops.append(Shipment(hub, origin, tier, dropped, latest, tuple(dests), drop_kits))
    source = "warehouse" if tier == 1 else "PPK"
    outcome = run.run(f"tier {tier}: from {source}", tier, direct + drops, origin_fleet, released)
    return _FirstLeg(direct + drops, outcome)


def _deliver(
    run: _Pass,
    tier: int,
    origin_of: Mapping[str, str],
    goods: Mapping[str, Mapping[str, int]],
    deadline: int,
    release: Mapping[str, int],
    *,
    with_hub_stock: bool = True,
) -> dict[str, int]:
    """Carry `goods` from their origins to their destinations: the origins' vehicles, then the ports' boats for
    what was dropped at a port and (`with_hub_stock`) the re-plan's goods waiting at ports for this tier.
    Returns the minute each served destination has all its goods."""
    task = run.ctx.task
    first = _first_leg(run, tier, origin_of, goods, deadline, release)
    arrival: dict[str, int] = {}
    hub_release: dict[str, int] = {}
    onward = []
    for stock in task.state.hub_stock if with_hub_stock else ():
        if stock.tier == tier:
            hub_release[stock.hub] = task.state.release(
                stock.hub, max(hub_release.get(stock.hub, 0), stock.ready)
            )
            stock_kits = run.ctx.kits_in(stock.destination, stock.items)
            onward.append(
                Shipment(
                    stock.destination,
                    stock.hub,
                    tier,
                    stock.items,
                    deadline,
                    kits=stock_kits,
                    pinned_type=_pinned_type(task, stock.destination),
                )
            )
    for s_index, shipment in enumerate(first.shipments):
        if s_index in first.outcome.missed:
            miss = first.outcome.missed[s_index]
            for dest in shipment.final or (shipment.destination,):
                detail = f"via {shipment.destination}: {miss.detail}" if shipment.final else miss.detail
                run.unserved.append(Missed(dest, miss.reason, detail))
        elif shipment.final:
            ready = first.outcome.arrivals[s_index]
            hub_release[shipment.destination] = max(hub_release.get(shipment.destination, 0), ready)
            onward += [
                Shipment(
                    d,
                    shipment.destination,
                    tier,
                    goods[d],
                    run.deadline_of(d, deadline),
                    kits=run.ctx.kits_in(d, goods[d]),
                    pinned_type=_pinned_type(task, d),
                )
                for d in shipment.final
            ]
        else:
            arrival[shipment.destination] = first.outcome.arrivals[s_index]
    if onward:
        vessels = [v for v in task.vehicles if tier in v.kind.tiers and v.base in hub_release]
        second = run.run(f"tier {tier}: from ports", tier, onward, vessels, hub_release)
        for s_index, shipment in enumerate(onward):
            if s_index in second.missed:
                run.unserved.append(second.missed[s_index])
            else:
                done = second.arrivals[s_index]
                arrival[shipment.destination] = max(arrival.get(shipment.destination, done), done)
    return arrival


def _pinned_type(task: KabupatenTask, destination: str) -> str:
    rule = task.assigned.get(destination)
    return rule.type_id if rule else ""


def _plan_pass(
    ctx: _Context, budget: float, ppk_deadline: Mapping[str, int], warm_routes: Mapping
) -> tuple[KabupatenResult, dict[str, int]]:
    """One plan of the kabupaten, tier by tier; `ppk_deadline` overrides the deadline of some PPKs.
    Returns the result and the minute each PPK has all its goods."""
    task = ctx.task
    run = _Pass.start(ctx, budget, ppk_deadline, warm_routes)
    ppks = sorted(task.ppk_goods)
    ppk_arrival = dict(task.state.ppk_ready)
    ppk_arrival.update(
        _deliver(
            run, 1, dict.fromkeys(ppks, ctx.warehouse), task.ppk_goods, task.ppk_deadline, {ctx.warehouse: 0}
        )
    )
    pinned = {p: g for p, g in task.pps_goods.items() if p in task.assigned}
    if pinned:  # after the PPKs' goods: their deadline is the earlier one
        origins = dict.fromkeys(pinned, ctx.warehouse)
        _deliver(run, 1, origins, pinned, task.pps_deadline, {ctx.warehouse: 0}, with_hub_stock=False)
    pps_goods = {}
    for pps, goods in task.pps_goods.items():
        ppk = task.pps_ppk[pps]
        if pps in pinned:
            continue
        if ppk in ppk_arrival:
            pps_goods[pps] = goods
        else:
            why = next((m for m in run.unserved if m.node_id == ppk), None)
            reason = why.reason if why else "no_vehicle"
            run.unserved.append(Missed(pps, reason, f"its PPK {ppk} was not supplied"))
    _deliver(run, 2, {p: task.pps_ppk[p] for p in pps_goods}, pps_goods, task.pps_deadline, ppk_arrival)
    return run.result(), ppk_arrival


# ---------------------------------------------------------------- coupling the tiers


def _fastest_arrival(
    ctx: _Context,
    fleet: Sequence[VehicleSpec],
    origin: str,
    dest: str,
    ready: int,
    kits: int = 0,
    unload: bool = True,
) -> float:
    """The earliest minute one of `fleet` (based at `origin`, goods there at `ready`) has unloaded at `dest`
    (the hand-over of `kits` TPS kits included); with `unload` False, the earliest minute it arrives there."""
    best = math.inf
    for v in fleet:
        matrix = ctx.paths[v.type_id]
        if v.base != origin or not matrix.there_and_back(origin, dest):
            continue
        handling = [v.kind.load_min, handling_minutes(v.kind, kits) if unload else 0]
        times, _ = schedule_trip(
            v.kind, ready, [matrix.path_minutes(origin, dest)], handling, ctx.task.start_minute_of_day
        )
        best = min(best, times[1][1])
    return best


def _earliest_ppk_arrivals(ctx: _Context) -> dict[str, int]:
    """A lower bound on the minute each PPK can have its goods: the fastest warehouse vehicle driving straight
    there, or to the port whose fastest boat then takes them on; the warehouse release when neither can.

    At a port the warehouse vehicle hands over the kits of every PPK served from there (one drop, as
    `_first_leg` plans it), so that a deadline set to this minute still leaves the drop a feasible window."""
    task = ctx.task
    release = task.state.release(ctx.warehouse)
    fleet = [v for v in task.vehicles if 1 in v.kind.tiers]
    earliest = dict(task.state.ppk_ready)
    todo = sorted(set(task.ppk_goods) - set(earliest))
    choices = {ppk: _route_choice(task, ctx.warehouse, ppk, 1, ctx.paths, ctx.any_mode) for ppk in todo}
    kit_count = {ppk: len(ctx.kits_in(ppk, task.ppk_goods[ppk])) for ppk in todo}
    drop_kits: dict[str, int] = defaultdict(int)
    for ppk, (choice, hub) in choices.items():
        if choice == "hub":
            drop_kits[hub] += kit_count[ppk]
    for ppk in todo:
        choice, hub = choices[ppk]
        kits = kit_count[ppk]
        best = math.inf
        if choice == "direct":
            best = _fastest_arrival(ctx, fleet, ctx.warehouse, ppk, release, kits)
        elif choice == "hub":
            at_hub = _fastest_arrival(ctx, fleet, ctx.warehouse, hub, release, drop_kits[hub])
            if math.isfinite(at_hub):
                best = _fastest_arrival(ctx, fleet, hub, ppk, task.state.release(hub, int(at_hub)), kits)
        earliest[ppk] = int(best) if math.isfinite(best) else release
    return earliest


def unmet_dues(task: KabupatenTask) -> set[str]:
    """The PPKs of `task.state.ppk_due` whose goods cannot be unloaded there by the minute due even by the
    fastest vehicle (`_earliest_ppk_arrivals`, a lower bound): a re-plan need not hold their trips."""
    due = {
        p: m for p, m in task.state.ppk_due.items() if p in task.ppk_goods and p not in task.state.ppk_ready
    }
    if not due:
        return set()
    earliest = _earliest_ppk_arrivals(_context(task))
    return {p for p, minute in due.items() if earliest.get(p, 0) > minute}


def _chain_on_time(
    trips: Sequence[Trip],
    release: int,
    kind: VehicleType,
    matrix: PathMatrix,
    deadline_of: Mapping[tuple[str, str], int],
    day: int,
) -> bool:
    """Whether one vehicle's trips, driven in the same order but leaving no earlier than `release`, still reach
    every stop by its deadline (laid out by the driving rules, `schedule_trip`, as the trips are read back:
    each hand-over takes the BAST time plus the time per TPS kit handed over)."""
    clock, driving = release, None
    for trip in trips:
        nodes = [v.node_id for v in trip.visits]
        handling = [kind.load_min, *(handling_minutes(kind, v.kit_count) for v in trip.visits[1:-1]), 0]
        minutes = [matrix.path_minutes(a, b) for a, b in zip(nodes, nodes[1:], strict=False)]
        times, driving = schedule_trip(kind, max(clock, release), minutes, handling, day, driving)
        for visit, (arrival, _) in zip(trip.visits[1:-1], times[1:-1], strict=True):
            if arrival > deadline_of[(trip.base, visit.node_id)]:
                return False
        clock = times[-1][0]
    return True


def _latest_release(
    ctx: _Context, trips: Sequence[Trip], deadline_of: Mapping[tuple[str, str], int], earliest: int
) -> int:
    """The latest minute the goods may reach a base so that its vehicles, driving `trips` in the same order,
    still make every deadline: bisected, since a later release never makes a trip earlier. `earliest` when even
    that is too late (the caller then keeps the tier-1 deadline at the earliest possible arrival)."""
    task = ctx.task
    by_vehicle: dict[str, list[Trip]] = defaultdict(list)
    for trip in sorted(trips, key=lambda t: (t.vehicle_id, t.trip)):
        by_vehicle[trip.vehicle_id].append(trip)
    specs = {v.vehicle_id: v for v in task.vehicles}

    def on_time(release: int) -> bool:
        return all(
            _chain_on_time(
                chain,
                max(release, task.state.vehicle_free.get(vid, 0)),
                specs[vid].kind,
                ctx.paths[specs[vid].type_id],
                deadline_of,
                task.start_minute_of_day,
            )
            for vid, chain in by_vehicle.items()
        )

    low, high = earliest, task.pps_deadline
    if not on_time(low):
        return earliest
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if on_time(middle) else (low, middle - 1)
    return low


def _backward_trips(
    ctx: _Context, ppks: set[str], release: Mapping[str, int], budget: float
) -> tuple[list[Trip], dict[tuple[str, str], int], set[str]]:
    """Tier 2 (first leg) for the desa of `ppks`, their goods at each PPK from `release`: the trips, the deadline
    of each (origin, destination), and the PPKs some of whose desa could not be served."""
    task = ctx.task
    # an estimate: one solve per PPK (a late load only makes the PPK's latest release earlier than it must be)
    run = replace(_Pass.start(ctx, budget), rounds=1)
    origin_of = {p: task.pps_ppk[p] for p in task.pps_goods if task.pps_ppk[p] in ppks}
    goods = {p: task.pps_goods[p] for p in origin_of}
    first = _first_leg(run, 2, origin_of, goods, task.pps_deadline, release)
    deadline_of = {(s.origin, s.destination): s.deadline for s in first.shipments}
    short = {origin_of[m.node_id] for m in run.unserved if m.node_id in origin_of}
    for s_index in first.outcome.missed:
        shipment = first.shipments[s_index]
        short.add(shipment.origin)
    return run.trips, deadline_of, short


def _backward_pass(ctx: _Context, earliest: Mapping[str, int], budget: float) -> tuple[dict[str, int], dict]:
    """How late may each PPK get its goods so that its own vehicles still serve all its desa in time?

    First plans the PPK fleets (tier 2, first leg) as if every PPK got its goods at the calendar's PPK deadline;
    the PPKs that then leave desa over are planned again as if they got their goods as early as possible.
    For each PPK, the latest release at which its trips still make every deadline is bisected
    (`_latest_release`). Returns that minute per PPK (absent: no tier-2 trip) and the trips as warm routes.
    """
    task = ctx.task
    ppks = set(task.ppk_goods) - set(task.state.ppk_ready)
    late_release = {p: max(task.ppk_deadline, earliest.get(p, 0)) for p in ppks}
    trips, deadline_of, short = _backward_trips(ctx, ppks, late_release, budget)
    if short:
        early_trips, early_deadlines, _ = _backward_trips(ctx, short, earliest, budget)
        trips = [t for t in trips if t.base not in short] + early_trips
        deadline_of.update(early_deadlines)
    by_base: dict[str, list[Trip]] = defaultdict(list)
    warm: dict[tuple[str, int], list[tuple[str, ...]]] = defaultdict(list)
    for trip in sorted(trips, key=lambda t: (t.vehicle_id, t.trip)):
        by_base[trip.base].append(trip)
        warm[(trip.vehicle_id, 2)].append(tuple(v.node_id for v in trip.visits[1:-1]))
    latest = {
        base: _latest_release(ctx, base_trips, deadline_of, earliest.get(base, 0))
        for base, base_trips in sorted(by_base.items())
        if base in ppks
    }
    return latest, {key: tuple(chain) for key, chain in warm.items()}


def _coupled_deadlines(
    ctx: _Context, latest: Mapping[str, int], earliest: Mapping[str, int]
) -> dict[str, int]:
    """Tier-1 deadline per PPK: its goods unloaded by the latest minute its own trips may start, never later than
    the calendar's PPK deadline, and never earlier than COUPLING_MARGIN_MIN after the earliest possible arrival
    (so tight a window would cost tier 1 the PPK altogether). Before, a PPK whose window was that tight kept the
    calendar's deadline: Muara Kaman (Kutai Kartanegara), whose own trips must start by minute 593, got its
    goods at 1914 and a desa 181 km away was left over (issue 13). The retry rule (`_next_deadlines`) gives a
    PPK that tier 1 cannot supply by its coupled deadline the calendar's back."""
    task = ctx.task
    fleet = [v for v in task.vehicles if v.base == ctx.warehouse and 1 in v.kind.tiers]
    hours = next((v.kind.operating_hours for v in fleet), None)
    deadlines = {}
    for ppk, minute in latest.items():
        if ppk in task.state.ppk_ready:
            continue
        kits = len(ctx.kits_in(ppk, task.ppk_goods.get(ppk, {})))  # all its kits: no load holds more
        unload = max((handling_minutes(v.kind, kits) for v in fleet), default=0)
        arrive_by = latest_start(minute, unload, hours, task.start_minute_of_day)
        deadlines[ppk] = min(task.ppk_deadline, max(arrive_by, earliest.get(ppk, 0) + COUPLING_MARGIN_MIN))
    for ppk, due in task.state.ppk_due.items():
        # kept trips leave the PPK at `due`: the goods must be unloaded before (unless they cannot be)
        if ppk not in task.ppk_goods or ppk in task.state.ppk_ready:
            continue
        kits = len(ctx.kits_in(ppk, task.ppk_goods[ppk]))
        unload = max((handling_minutes(v.kind, kits) for v in fleet), default=0)
        arrive_by = latest_start(due, unload, hours, task.start_minute_of_day)
        if arrive_by >= earliest.get(ppk, 0):
            deadlines[ppk] = min(deadlines.get(ppk, task.ppk_deadline), arrive_by)
    return deadlines


def _late_ppks(task: KabupatenTask, result: KabupatenResult, arrival: Mapping[str, int]) -> set[str]:
    """PPKs some of whose desa were left over for capacity or time while the PPK itself was supplied."""
    late = {
        task.pps_ppk[m.node_id]
        for m in result.unserved
        if m.node_id in task.pps_ppk and m.reason in ("capacity", "too_late")
    }
    return {p for p in late if p in arrival and p not in task.state.ppk_ready}


def _next_deadlines(
    task: KabupatenTask,
    deadlines: Mapping[str, int],
    result: KabupatenResult,
    arrival: Mapping[str, int],
    earliest: Mapping[str, int],
) -> dict[str, int]:
    """The bounded retry rule between two passes. A PPK that tier 1 could not supply by its coupled deadline gets
    the calendar's deadline back; a PPK some of whose desa were left over for capacity or time must get its goods
    TIGHTEN_STEP_MIN earlier than it did, but never before they can possibly arrive."""
    missed = {m.node_id for m in result.unserved} & set(deadlines)
    following = {p: d for p, d in deadlines.items() if p not in missed}
    for ppk in sorted(_late_ppks(task, result, arrival) - missed):
        current = min(deadlines.get(ppk, task.ppk_deadline), arrival[ppk])
        following[ppk] = max(earliest.get(ppk, 0), current - TIGHTEN_STEP_MIN)
    return following


def plan_kabupaten(task: KabupatenTask) -> KabupatenResult:
    """Plan one kabupaten (see `plan_tiers`). A failure of the planner itself is reported, not raised: every
    stop of the kabupaten is unserved with reason `planner_error` and the error, and `failure` says what went
    wrong, so that one kabupaten's failure never costs the others their plans."""
    try:
        return plan_tiers(task)
    except Exception as err:  # noqa: BLE001 - whatever the bug, the other kabupaten must still be planned
        failure = f"the planner failed on kabupaten {task.kabupaten_code}: {type(err).__name__}: {err}"
        stops = sorted({*task.ppk_goods, *task.pps_goods})
        missed = tuple(Missed(node, "planner_error", failure) for node in stops)
        return KabupatenResult(
            task.kabupaten_code, (), missed, ({"layer": "failed", "error": failure},), failure
        )


def plan_tiers(task: KabupatenTask) -> KabupatenResult:
    """Plan one kabupaten: both tiers, every port hand-over, and an unserved reason for every stop left out.

    The tiers are coupled by a backward pass: tier 2 is planned first as if every PPK had its goods as early as
    possible, which tells how late each PPK may get them (`_backward_pass`); tier 1 then plans with those
    deadlines and tier 2 again from the real arrivals, warm-started from the backward trips. While stops are
    left over, the PPK deadlines are adjusted by `_next_deadlines` (at most COUPLING_ROUNDS passes in all) and
    the plan that serves most is kept.
    """
    ctx = _context(task)
    budget = task.settings.time_limit_s
    earliest = _earliest_ppk_arrivals(ctx)
    # in deterministic mode the clock is only a safety net, and a tight one would make the plan depend on load
    backward_budget = budget if task.settings.deterministic else budget * BACKWARD_SHARE / 2
    latest, warm = _backward_pass(ctx, earliest, backward_budget)
    deadlines = _coupled_deadlines(ctx, latest, earliest)
    best: KabupatenResult | None = None
    for round_no in range(COUPLING_ROUNDS):
        result, arrival = _plan_pass(ctx, budget if round_no == 0 else budget / 2, deadlines, warm)
        if best is None or len(result.unserved) < len(best.unserved):
            best = result
        following = _next_deadlines(task, deadlines, result, arrival, earliest)
        if not result.unserved or following == deadlines:
            break
        deadlines = following
    return best
