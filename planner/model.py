"""The routing problem as plain data, and the OR-Tools model built from it.

A `RoutingProblem` is what every planner solve and every VRPLIB benchmark hands to the engine: vehicle classes
(one distance and one duration matrix per class, so a truck and a boat see different networks), vehicles,
stops and a horizon, all in integers (metres, minutes, decagrams, litres ...). `build_model` turns it into an
OR-Tools RoutingModel with matrices registered once per class (RegisterTransitMatrix /
RegisterUnaryTransitVector, no per-arc Python callbacks). Search and seeding live in planner.search.

Node layout shared by OR-Tools and the PyVRP seed: node i < number of plannable stops is one stop (two
stops at the same place are two nodes), then one node per distinct vehicle start or end location.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from ortools.constraint_solver import pywrapcp

from planner.errors import InputError

UNREACHABLE = 10**12
"""Matrix entries at or above this value mean "no path" for that vehicle class."""

MAX_COST_PER_DISTANCE = 10**6
TIME_DIMENSION = "time"
LOAD_PREFIX = "load:"

# Reasons a stop is not served; the plan format (planner.plan.UnservedReason) uses the same words.
NO_VEHICLE = "no_vehicle"
UNREACHABLE_REASON = "unreachable"
CAPACITY = "capacity"
TOO_LATE = "too_late"
DROPPED = "dropped"  # individually feasible, but the solver found no room for it (or chose its penalty)


@dataclass(frozen=True, eq=False)
class VehicleClass:
    """One class of vehicle and the matrices it sees: int64 [n_loc, n_loc] distance (e.g. metres) and
    duration (minutes). Entries >= UNREACHABLE mean the class cannot travel between the two locations."""

    name: str
    distance: np.ndarray
    duration: np.ndarray

    def __post_init__(self) -> None:
        for label in ("distance", "duration"):
            matrix = np.asarray(getattr(self, label))
            if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
                raise InputError(
                    f"vehicle class {self.name!r}: {label} matrix must be square, got {matrix.shape}"
                )
            if (matrix < 0).any():
                raise InputError(f"vehicle class {self.name!r}: {label} matrix has negative entries")
            object.__setattr__(self, label, np.minimum(matrix.astype(np.int64), UNREACHABLE))
        if self.distance.shape != self.duration.shape:
            raise InputError(f"vehicle class {self.name!r}: distance and duration matrices differ in shape")

    @property
    def n_locations(self) -> int:
        return int(self.distance.shape[0])


@dataclass(frozen=True)
class Vehicle:
    """One vehicle (or one trip of a physical vehicle, see `follows`). Times are minutes from the horizon start.

    breaks: absolute (start, end) intervals in which the vehicle neither travels nor serves (nights).
    follows: index of the vehicle (trip) whose route must end, plus `reload_minutes`, before this one starts.
    """

    id: str
    class_index: int
    start_loc: int
    end_loc: int
    capacity: tuple[int, ...]
    earliest_start: int = 0
    latest_end: int | None = None  # None: the horizon
    fixed_cost: int = 0
    cost_per_distance: int = 1
    breaks: tuple[tuple[int, int], ...] = ()
    max_duration: int | None = None
    follows: int | None = None
    reload_minutes: int = 0


@dataclass(frozen=True)
class Stop:
    """A delivery at one location. window bounds the start of service; penalty None means mandatory,
    otherwise the solver may leave the stop unserved at that cost (and says so)."""

    loc: int
    demand: tuple[int, ...]
    service: int = 0
    window: tuple[int, int] | None = None
    allowed_vehicles: tuple[int, ...] | None = None
    penalty: int | None = None
    name: str = ""


@dataclass(frozen=True, eq=False)
class RoutingProblem:
    vehicle_classes: tuple[VehicleClass, ...]
    vehicles: tuple[Vehicle, ...]
    stops: tuple[Stop, ...]
    horizon: int
    dimensions: tuple[str, ...] = ("load",)
    name: str = ""

    @property
    def n_locations(self) -> int:
        return self.vehicle_classes[0].n_locations if self.vehicle_classes else 0

    def latest_end(self, vehicle: Vehicle) -> int:
        return self.horizon if vehicle.latest_end is None else vehicle.latest_end

    def window(self, stop: Stop) -> tuple[int, int]:
        return (0, self.horizon) if stop.window is None else stop.window

    @property
    def has_time_constraints(self) -> bool:
        """True when arrival times matter to feasibility (then the model gets a time dimension)."""
        vehicle_bound = any(
            v.earliest_start > 0
            or self.latest_end(v) < self.horizon
            or v.breaks
            or v.max_duration is not None
            or v.follows is not None
            for v in self.vehicles
        )
        stop_bound = any(s.window is not None and s.window != (0, self.horizon) for s in self.stops)
        return vehicle_bound or stop_bound


def validate_problem(problem: RoutingProblem) -> list[str]:
    """Every inconsistency in the problem, as messages naming the vehicle, stop or class; [] if none."""
    problems: list[str] = []
    n_dims = len(problem.dimensions)
    if not problem.vehicle_classes:
        return ["no vehicle classes"]
    n_loc = problem.n_locations
    for c in problem.vehicle_classes:
        if c.n_locations != n_loc:
            problems.append(f"vehicle class {c.name!r}: matrices are {c.n_locations} wide, expected {n_loc}")
    if problem.horizon <= 0 or problem.horizon >= UNREACHABLE:
        problems.append(f"horizon {problem.horizon} must be positive and below {UNREACHABLE}")
    if len(set(problem.dimensions)) != n_dims:
        problems.append(f"dimension names repeat: {problem.dimensions}")
    for i, v in enumerate(problem.vehicles):
        where = f"vehicle {i} ({v.id})"
        if not 0 <= v.class_index < len(problem.vehicle_classes):
            problems.append(f"{where}: class_index {v.class_index} out of range")
            continue
        for label, loc in (("start_loc", v.start_loc), ("end_loc", v.end_loc)):
            if not 0 <= loc < n_loc:
                problems.append(f"{where}: {label} {loc} out of range")
        if len(v.capacity) != n_dims or any(c < 0 for c in v.capacity):
            problems.append(f"{where}: capacity {v.capacity} must be {n_dims} non-negative numbers")
        if not 0 <= v.earliest_start <= problem.latest_end(v) <= problem.horizon:
            problems.append(f"{where}: needs 0 <= earliest_start <= latest_end <= horizon")
        if not 0 <= v.cost_per_distance <= MAX_COST_PER_DISTANCE or v.fixed_cost < 0:
            problems.append(f"{where}: cost_per_distance and fixed_cost must be non-negative (and sane)")
        for start, end in v.breaks:
            if not 0 <= start < end:
                problems.append(f"{where}: break ({start}, {end}) must have 0 <= start < end")
        if v.max_duration is not None and v.max_duration < 0:
            problems.append(f"{where}: max_duration must be non-negative")
        if v.follows is not None and not (0 <= v.follows < len(problem.vehicles) and v.follows != i):
            problems.append(f"{where}: follows {v.follows} is not another vehicle")
        if v.reload_minutes < 0:
            problems.append(f"{where}: reload_minutes must be non-negative")
        if (
            not problems
            and v.start_loc != v.end_loc
            and problem.vehicle_classes[v.class_index].duration[v.start_loc, v.end_loc] >= UNREACHABLE
        ):
            problems.append(f"{where}: end_loc {v.end_loc} cannot be reached from start_loc {v.start_loc}")
    problems.extend(_chain_cycles(problem.vehicles))
    for i, s in enumerate(problem.stops):
        where = f"stop {i}" + (f" ({s.name})" if s.name else "")
        if not 0 <= s.loc < n_loc:
            problems.append(f"{where}: loc {s.loc} out of range")
        if len(s.demand) != n_dims or any(d < 0 for d in s.demand):
            problems.append(f"{where}: demand {s.demand} must be {n_dims} non-negative numbers")
        if s.service < 0:
            problems.append(f"{where}: service must be non-negative")
        if s.window is not None and not 0 <= s.window[0] <= s.window[1]:
            problems.append(f"{where}: window {s.window} must have 0 <= earliest <= latest")
        if s.penalty is not None and s.penalty < 0:
            problems.append(f"{where}: penalty must be non-negative")
        if s.allowed_vehicles is not None:
            bad = [v for v in s.allowed_vehicles if not 0 <= v < len(problem.vehicles)]
            if bad:
                problems.append(f"{where}: allowed_vehicles {bad} out of range")
    return problems


def _chain_cycles(vehicles: Sequence[Vehicle]) -> list[str]:
    for i in range(len(vehicles)):
        seen, current = set(), i
        while current is not None and 0 <= current < len(vehicles):
            if current in seen:
                return [f"vehicle {i} ({vehicles[i].id}): `follows` forms a cycle"]
            seen.add(current)
            current = vehicles[current].follows
    return []


# ---------------------------------------------------------------- which vehicle can serve which stop


@dataclass(frozen=True)
class Eligibility:
    """For each stop the vehicles that could serve it alone, or the reason none can."""

    vehicles: tuple[tuple[int, ...], ...]
    reasons: dict[int, str]

    @property
    def plannable(self) -> tuple[int, ...]:
        return tuple(i for i, vs in enumerate(self.vehicles) if vs)


_REASON_ORDER = (NO_VEHICLE, UNREACHABLE_REASON, CAPACITY, TOO_LATE)  # later = got further through the checks


def eligible_vehicles(problem: RoutingProblem) -> Eligibility:
    """A vehicle is eligible for a stop if allowed, the stop is reachable from its start and its end is
    reachable from the stop, the demand fits, and an out-and-back trip can meet the windows and the maximum
    duration. A stop no vehicle is eligible for gets the reason of the vehicle that got furthest."""
    n_stops, n_vehicles = len(problem.stops), len(problem.vehicles)
    if n_stops == 0:
        return Eligibility((), {})
    locs = np.array([s.loc for s in problem.stops], dtype=np.int64)
    demand = np.array([s.demand for s in problem.stops], dtype=np.int64).reshape(n_stops, -1)
    service = np.array([s.service for s in problem.stops], dtype=np.int64)
    windows = np.array([problem.window(s) for s in problem.stops], dtype=np.int64).reshape(n_stops, 2)
    # codes: index into _REASON_ORDER, or -1 when the vehicle is eligible
    codes = np.zeros((n_stops, n_vehicles), dtype=np.int64)
    for v_index, vehicle in enumerate(problem.vehicles):
        vclass = problem.vehicle_classes[vehicle.class_index]
        out_km, back_km = vclass.distance[vehicle.start_loc, locs], vclass.distance[locs, vehicle.end_loc]
        out_min, back_min = vclass.duration[vehicle.start_loc, locs], vclass.duration[locs, vehicle.end_loc]
        reachable = np.maximum.reduce([out_km, back_km, out_min, back_min]) < UNREACHABLE
        fits = (demand <= np.array(vehicle.capacity, dtype=np.int64)).all(axis=1)
        arrival = vehicle.earliest_start + out_min
        back = np.maximum(arrival, windows[:, 0]) + service + back_min
        in_time = (arrival <= windows[:, 1]) & (back <= problem.latest_end(vehicle))
        if vehicle.max_duration is not None:
            in_time &= out_min + service + back_min <= vehicle.max_duration
        codes[:, v_index] = np.select([~reachable, ~fits, ~in_time], [1, 2, 3], default=-1)
    for s_index, stop in enumerate(problem.stops):
        if stop.allowed_vehicles is not None:
            barred = np.ones(n_vehicles, dtype=bool)
            barred[list(stop.allowed_vehicles)] = False
            codes[s_index, barred] = 0
    per_stop: list[tuple[int, ...]] = []
    reasons: dict[int, str] = {}
    for s_index in range(n_stops):
        ok = np.flatnonzero(codes[s_index] < 0)
        per_stop.append(tuple(int(v) for v in ok))
        if not len(ok):
            reasons[s_index] = _REASON_ORDER[int(codes[s_index].max(initial=0))]
    return Eligibility(tuple(per_stop), reasons)


# ---------------------------------------------------------------- node layout


@dataclass(frozen=True, eq=False)
class NodeLayout:
    """Nodes of the OR-Tools model: plannable stops first, then vehicle start/end locations."""

    stop_of_node: tuple[int, ...]  # node -> stop index, for the first n_stop_nodes nodes
    node_loc: np.ndarray  # node -> location index
    start_node: tuple[int, ...]  # vehicle -> node
    end_node: tuple[int, ...]

    @property
    def n_stop_nodes(self) -> int:
        return len(self.stop_of_node)

    @property
    def n_nodes(self) -> int:
        return len(self.node_loc)

    @property
    def node_of_stop(self) -> dict[int, int]:
        return {s: n for n, s in enumerate(self.stop_of_node)}

    @property
    def depot_nodes(self) -> range:
        return range(self.n_stop_nodes, self.n_nodes)


def node_layout(problem: RoutingProblem, plannable: Sequence[int]) -> NodeLayout:
    """The model's node numbering: the `plannable` stops first (in order), then one node per depot location."""
    depot_locs = sorted({v.start_loc for v in problem.vehicles} | {v.end_loc for v in problem.vehicles})
    depot_node = {loc: len(plannable) + k for k, loc in enumerate(depot_locs)}
    node_loc = np.array([problem.stops[s].loc for s in plannable] + depot_locs, dtype=np.int64)
    return NodeLayout(
        stop_of_node=tuple(plannable),
        node_loc=node_loc,
        start_node=tuple(depot_node[v.start_loc] for v in problem.vehicles),
        end_node=tuple(depot_node[v.end_loc] for v in problem.vehicles),
    )


def node_matrix(layout: NodeLayout, matrix: np.ndarray) -> np.ndarray:
    """`matrix` (by location) restricted and ordered to the layout's nodes."""
    return matrix[np.ix_(layout.node_loc, layout.node_loc)]


def node_service(problem: RoutingProblem, layout: NodeLayout) -> np.ndarray:
    """Service minutes per model node (0 at the depots)."""
    service = np.zeros(layout.n_nodes, dtype=np.int64)
    service[: layout.n_stop_nodes] = [problem.stops[s].service for s in layout.stop_of_node]
    return service


def mandatory_penalty(problem: RoutingProblem) -> int:
    """A drop penalty for mandatory stops larger than anything serving a stop can cost: serving one is always
    preferred, and no set of optional stops is worth dropping it."""
    finite = [c.distance[c.distance < UNREACHABLE] for c in problem.vehicle_classes]
    longest = max((int(f.max()) for f in finite if f.size), default=0)
    max_rate = max((v.cost_per_distance for v in problem.vehicles), default=1)
    max_fixed = max((v.fixed_cost for v in problem.vehicles), default=0)
    optional = sum(s.penalty for s in problem.stops if s.penalty is not None)
    return 10 * (2 * longest * max_rate + max_fixed + optional + 1)


# ---------------------------------------------------------------- the OR-Tools model


@dataclass(eq=False)
class BuiltModel:
    """An OR-Tools routing model for a problem, with what is needed to read solutions back."""

    problem: RoutingProblem
    eligibility: Eligibility
    layout: NodeLayout
    manager: pywrapcp.RoutingIndexManager
    routing: pywrapcp.RoutingModel
    time_dimension: pywrapcp.RoutingDimension | None
    load_dimensions: tuple[pywrapcp.RoutingDimension, ...]
    mandatory_penalty: int
    keep_alive: list = field(default_factory=list)  # SWIG objects the model refers to

    def stop_index(self, routing_index: int) -> int:
        return self.layout.stop_of_node[self.manager.IndexToNode(routing_index)]

    def routing_index(self, stop: int) -> int:
        return self.manager.NodeToIndex(self.layout.node_of_stop[stop])


def check_problem(problem: RoutingProblem) -> None:
    """Raise InputError listing every inconsistency of `problem` (validate_problem); return if there is none."""
    problems = validate_problem(problem)
    if problems:
        raise InputError(
            "the routing problem is inconsistent", source=problem.name or None, problems=problems
        )


def build_model(problem: RoutingProblem, eligibility: Eligibility | None = None) -> BuiltModel:
    """The OR-Tools model: arc costs per (class, cost rate), capacity dimensions, a time dimension with windows,
    breaks, spans and chained trips when the problem has time constraints, one disjunction per stop.
    Needs at least one vehicle."""
    if eligibility is None:
        check_problem(problem)
        eligibility = eligible_vehicles(problem)
    if not problem.vehicles:
        raise ValueError("build_model needs at least one vehicle")
    layout = node_layout(problem, eligibility.plannable)
    manager = pywrapcp.RoutingIndexManager(
        layout.n_nodes, len(problem.vehicles), list(layout.start_node), list(layout.end_node)
    )
    routing = pywrapcp.RoutingModel(manager)
    _set_arc_costs(problem, layout, routing)
    load_dimensions = _add_load_dimensions(problem, layout, routing)
    time_dimension = None
    keep_alive: list = []
    if problem.has_time_constraints or _has_unreachable_arcs(problem, layout):
        time_dimension, keep_alive = _add_time_dimension(problem, layout, manager, routing)
    penalty = mandatory_penalty(problem)
    node_of_stop = layout.node_of_stop
    all_vehicles = len(problem.vehicles)
    for s_index in layout.stop_of_node:
        stop = problem.stops[s_index]
        index = manager.NodeToIndex(node_of_stop[s_index])
        routing.AddDisjunction([index], penalty if stop.penalty is None else stop.penalty)
        allowed = eligibility.vehicles[s_index]
        if len(allowed) < all_vehicles:
            # SetAllowedVehiclesForIndex rejects Python lists in OR-Tools 9.15's bindings
            routing.VehicleVar(index).SetValues([-1, *allowed])
    for v_index, vehicle in enumerate(problem.vehicles):
        if vehicle.fixed_cost:
            routing.SetFixedCostOfVehicle(vehicle.fixed_cost, v_index)
    return BuiltModel(
        problem, eligibility, layout, manager, routing, time_dimension, load_dimensions, penalty, keep_alive
    )


def _set_arc_costs(problem: RoutingProblem, layout: NodeLayout, routing: pywrapcp.RoutingModel) -> None:
    evaluators: dict[tuple[int, int], int] = {}
    for v_index, vehicle in enumerate(problem.vehicles):
        key = (vehicle.class_index, vehicle.cost_per_distance)
        if key not in evaluators:
            matrix = node_matrix(layout, problem.vehicle_classes[vehicle.class_index].distance)
            evaluators[key] = routing.RegisterTransitMatrix((matrix * vehicle.cost_per_distance).tolist())
        routing.SetArcCostEvaluatorOfVehicle(evaluators[key], v_index)


def _add_load_dimensions(
    problem: RoutingProblem, layout: NodeLayout, routing: pywrapcp.RoutingModel
) -> tuple[pywrapcp.RoutingDimension, ...]:
    dimensions = []
    for d, name in enumerate(problem.dimensions):
        demand = [0] * layout.n_nodes
        for node, s_index in enumerate(layout.stop_of_node):
            demand[node] = problem.stops[s_index].demand[d]
        if not any(demand):
            continue
        evaluator = routing.RegisterUnaryTransitVector(demand)
        capacities = [v.capacity[d] for v in problem.vehicles]
        routing.AddDimensionWithVehicleCapacity(evaluator, 0, capacities, True, LOAD_PREFIX + name)
        dimensions.append(routing.GetDimensionOrDie(LOAD_PREFIX + name))
    return tuple(dimensions)


def _has_unreachable_arcs(problem: RoutingProblem, layout: NodeLayout) -> bool:
    classes = {v.class_index for v in problem.vehicles}
    return any(
        (node_matrix(layout, problem.vehicle_classes[c].duration) >= UNREACHABLE).any() for c in classes
    )


def _add_time_dimension(
    problem: RoutingProblem,
    layout: NodeLayout,
    manager: pywrapcp.RoutingIndexManager,
    routing: pywrapcp.RoutingModel,
) -> tuple[pywrapcp.RoutingDimension, list]:
    service = node_service(problem, layout)
    evaluators: dict[int, int] = {}
    per_vehicle = []
    for vehicle in problem.vehicles:
        c = vehicle.class_index
        if c not in evaluators:
            travel = node_matrix(layout, problem.vehicle_classes[c].duration)
            # service at the from-node is part of the transit; unreachable stays above the horizon
            evaluators[c] = routing.RegisterTransitMatrix((travel + service[:, None]).tolist())
        per_vehicle.append(evaluators[c])
    horizon = problem.horizon
    routing.AddDimensionWithVehicleTransits(per_vehicle, horizon, horizon, False, TIME_DIMENSION)
    time = routing.GetDimensionOrDie(TIME_DIMENSION)
    for node, s_index in enumerate(layout.stop_of_node):
        early, late = problem.window(problem.stops[s_index])
        time.CumulVar(manager.NodeToIndex(node)).SetRange(early, min(late, horizon))
    solver = routing.solver()
    # service time per routing index (not per node): the break constraint reads it by index
    visit_transits = [int(service[manager.IndexToNode(i)]) for i in range(routing.Size())]
    keep_alive = []
    for v_index, vehicle in enumerate(problem.vehicles):
        latest = problem.latest_end(vehicle)
        time.CumulVar(routing.Start(v_index)).SetRange(vehicle.earliest_start, latest)
        time.CumulVar(routing.End(v_index)).SetRange(vehicle.earliest_start, latest)
        if vehicle.max_duration is not None:
            time.SetSpanUpperBoundForVehicle(vehicle.max_duration, v_index)
        if vehicle.breaks:
            intervals = [
                solver.FixedDurationIntervalVar(start, start, end - start, False, f"break {v_index}.{k}")
                for k, (start, end) in enumerate(vehicle.breaks)
            ]
            keep_alive.extend(intervals)
            time.SetBreakIntervalsOfVehicle(intervals, v_index, visit_transits)
        if vehicle.follows is not None:
            # only a trip that is driven waits for the reload; an unused one constrains nothing
            solver.Add(
                time.CumulVar(routing.Start(v_index))
                >= time.CumulVar(routing.End(vehicle.follows))
                + routing.ActiveVehicleVar(v_index) * vehicle.reload_minutes
            )
        routing.AddVariableMaximizedByFinalizer(time.CumulVar(routing.Start(v_index)))
        routing.AddVariableMinimizedByFinalizer(time.CumulVar(routing.End(v_index)))
    return time, keep_alive


# ---------------------------------------------------------------- plain evaluation of routes


def route_distance(problem: RoutingProblem, vehicle_index: int, stops: Sequence[int]) -> int:
    """Distance of a route from the vehicle's start through `stops` to its end, in the class's units."""
    vehicle = problem.vehicles[vehicle_index]
    if not stops:
        return 0
    locs = [vehicle.start_loc, *(problem.stops[s].loc for s in stops), vehicle.end_loc]
    matrix = problem.vehicle_classes[vehicle.class_index].distance
    return int(sum(matrix[a, b] for a, b in zip(locs[:-1], locs[1:], strict=True)))


def route_cost(problem: RoutingProblem, vehicle_index: int, stops: Sequence[int]) -> int:
    """Distance times the vehicle's cost rate plus its fixed cost; 0 for an unused vehicle."""
    if not stops:
        return 0
    vehicle = problem.vehicles[vehicle_index]
    return route_distance(problem, vehicle_index, stops) * vehicle.cost_per_distance + vehicle.fixed_cost
