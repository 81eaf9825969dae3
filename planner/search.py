"""Search: settings, the PyVRP seed, the OR-Tools search and the solution as plain data.

`solve(problem, settings)` is the one entry point used by Kaltim plans and VRPLIB benchmarks alike:

1. build the OR-Tools model (planner.model) and close it with the search parameters;
2. seed it: by default PyVRP's iterated local search solves the same problem (or the part of it PyVRP can
   express) for `seed_share` of the time, and its routes are read into OR-Tools with ReadAssignmentFromRoutes;
3. OR-Tools guided local search improves the seed under every constraint for the rest of the time.

What PyVRP cannot express is relaxed in the seed and repaired by OR-Tools:
- breaks (nights): PyVRP plans in working minutes, the clock with every vehicle's breaks cut out
  (`WorkClock`); a service that would straddle a break is what OR-Tools repairs;
- chained trips (`follows`) become one PyVRP vehicle with reloads at its depot when the trips share depot,
  class, capacity, costs and allowed stops (reload minutes as the depot's service time); otherwise the
  trips are seeded as independent vehicles;
- the maximum duration of chained trips is left out;
- costs are put in coarser units when a minute of driving would cost more than PyVRP's lateness penalty can
  outweigh (`CostUnits`), so that PyVRP still looks for on-time routes.
If the seed cannot be read whole (ReadAssignmentFromRoutes returns None), each route keeps its longest
readable prefix and the later stops that still fit; the left-out stops start unserved and OR-Tools inserts
them (every stop has a disjunction, mandatory ones with a penalty above any routing cost). If not even that
can be read, or PyVRP refuses the data, OR-Tools builds its own first solution (`fallback_first_solution`).
On problems above LARGE_PROBLEM_STOPS stops a few OR-Tools insertion LNS operators are switched off: single
moves of theirs overran the time limit by seconds on 1000-customer instances.

Deterministic mode stops PyVRP after `seed_iterations` iterations and OR-Tools after `solution_limit`
solutions; the wall-time limit then only guards against runaway runs (the solution says if it was hit).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pyvrp
from ortools.constraint_solver import pywrapcp, routing_enums_pb2
from ortools.util import optional_boolean_pb2
from pyvrp.constants import MAX_VALUE as PYVRP_MAX_VALUE
from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria, NoImprovement

from planner.model import (
    DROPPED,
    UNREACHABLE,
    BuiltModel,
    Eligibility,
    NodeLayout,
    RoutingProblem,
    build_model,
    check_problem,
    eligible_vehicles,
    mandatory_penalty,
    node_matrix,
    route_cost,
    route_distance,
)
from planner.settings import (
    FIRST_SOLUTION_NAMES,
    METAHEURISTIC_NAMES,
    PYVRP_SEED,
    SearchSettings,
)

FIRST_SOLUTION_STRATEGIES = {
    name: getattr(routing_enums_pb2.FirstSolutionStrategy, name.upper().replace("-", "_"))
    for name in FIRST_SOLUTION_NAMES
}
METAHEURISTICS = {
    name: getattr(routing_enums_pb2.LocalSearchMetaheuristic, name.upper().replace("-", "_"))
    for name in METAHEURISTIC_NAMES
}
LARGE_PROBLEM_STOPS = 300
SLOW_ON_LARGE_PROBLEMS = (
    "use_global_cheapest_insertion_path_lns",
    "use_local_cheapest_insertion_path_lns",
    "use_global_cheapest_insertion_visit_types_lns",
    "use_local_cheapest_insertion_visit_types_lns",
    "use_relocate_path_global_cheapest_insertion_insert_unperformed",
)


@dataclass(frozen=True)
class Visit:
    """A stop on a route: service starts at `arrival` (after any wait) and ends at `departure`, in minutes."""

    stop: int
    arrival: int
    departure: int


@dataclass(frozen=True)
class VehicleRoute:
    vehicle: int
    visits: tuple[Visit, ...]
    start_time: int
    end_time: int
    distance: int
    cost: int
    load: tuple[int, ...]

    @property
    def stops(self) -> tuple[int, ...]:
        return tuple(v.stop for v in self.visits)

    @property
    def used(self) -> bool:
        return bool(self.visits)


@dataclass(frozen=True)
class Unserved:
    stop: int
    reason: str  # planner.model reasons: no_vehicle, unreachable, capacity, too_late, dropped


@dataclass(frozen=True)
class RoutingSolution:
    """status: "feasible" (every mandatory stop served), "incomplete" (some mandatory stop unserved) or
    "no_solution". seed_source says where the first solution came from."""

    routes: tuple[VehicleRoute, ...]  # one per vehicle, in vehicle order (empty visits when unused)
    unserved: tuple[Unserved, ...]
    total_distance: int
    total_cost: int  # distance x cost rate + fixed costs, without drop penalties
    objective: int  # total_cost + penalties of the unserved stops
    wall_time_s: float
    status: str
    seed_source: str
    reproducible: bool
    stats: dict = field(default_factory=dict)

    @property
    def used_routes(self) -> tuple[VehicleRoute, ...]:
        return tuple(r for r in self.routes if r.used)


def solve(
    problem: RoutingProblem,
    settings: SearchSettings = SearchSettings(),
    initial_routes: Sequence[Sequence[int]] | None = None,
) -> RoutingSolution:
    """Plan routes for `problem`. initial_routes (stop indices per vehicle, e.g. the previous plan's) warm-start
    the search: they seed PyVRP, or are read into OR-Tools directly when first_solution is not pyvrp-seed."""
    started = time.perf_counter()
    check_problem(problem)
    if initial_routes is not None and len(initial_routes) != len(problem.vehicles):
        raise ValueError(
            f"initial_routes has {len(initial_routes)} routes for {len(problem.vehicles)} vehicles"
        )
    eligibility = eligible_vehicles(problem)
    if not eligibility.plannable:  # nothing any vehicle can serve (or no vehicles at all)
        return _unrouted_solution(problem, eligibility, time.perf_counter() - started)
    built = build_model(problem, eligibility)
    params = search_parameters(problem, settings)
    built.routing.CloseModelWithParameters(params)
    if settings.stall_solutions:
        _stop_when_stalled(built.routing, settings.stall_solutions)
    stats: dict = {"build_s": round(time.perf_counter() - started, 3)}

    seed_routes: list[list[int]] | None = None
    seed_source = f"ortools:{_fallback_name(problem, settings)}"
    within_limits = True
    if built.layout.n_stop_nodes and settings.first_solution == PYVRP_SEED:
        budget = settings.seed_share * max(settings.time_limit_s - (time.perf_counter() - started), 0.0)
        try:
            seed = pyvrp_seed(built, settings, budget, initial_routes)
        except (ValueError, RuntimeError, OverflowError, IndexError) as err:  # PyVRP refused the data
            seed_source += f" (PyVRP failed: {err})"
        else:
            stats.update(seed.stats)
            within_limits &= seed.within_limits
            seed_routes, seed_source = seed.routes, "pyvrp"
    elif built.layout.n_stop_nodes and initial_routes is not None:
        seed_routes = [[s for s in route if s in built.layout.node_of_stop] for route in initial_routes]
        seed_source = "initial-routes"

    assignment = None
    if seed_routes is not None:
        deadline = started + settings.time_limit_s * (1 + settings.seed_share) / 2
        assignment, kept_routes = read_seed(built, seed_routes, None if settings.deterministic else deadline)
        left_out = sum(map(len, seed_routes)) - sum(map(len, kept_routes))
        if assignment is None:
            seed_source = f"ortools:{_fallback_name(problem, settings)} (seed unreadable)"
        elif left_out:
            seed_source += f" (repaired: {left_out} stops re-inserted by OR-Tools)"

    remaining = settings.time_limit_s - (time.perf_counter() - started)
    _set_limits(params, settings, remaining)
    search_started = time.perf_counter()
    if assignment is not None:
        solution = built.routing.SolveFromAssignmentWithParameters(assignment, params)
        if solution is None:  # the limits left no room for search: keep the seed
            solution = built.routing.ReadAssignmentFromRoutes(kept_routes, True)
    else:
        solution = built.routing.SolveWithParameters(params)
    search_s = time.perf_counter() - search_started
    stats["ortools_s"] = round(search_s, 3)
    if settings.deterministic and search_s >= 0.95 * settings.time_limit_s:  # the safety net was hit
        within_limits = False
    return _read_solution(
        built,
        solution,
        wall_time_s=time.perf_counter() - started,
        seed_source=seed_source,
        reproducible=settings.deterministic and within_limits,
        stats=stats,
    )


# ---------------------------------------------------------------- search parameters


def _fallback_name(problem: RoutingProblem, settings: SearchSettings) -> str:
    if settings.first_solution != PYVRP_SEED:
        return settings.first_solution
    if settings.fallback_first_solution != "auto":
        return settings.fallback_first_solution
    return "parallel-cheapest-insertion" if problem.has_time_constraints else "savings"


def search_parameters(
    problem: RoutingProblem, settings: SearchSettings
) -> pywrapcp.DefaultRoutingSearchParameters:
    """OR-Tools search parameters for `settings`: first solution, metaheuristic, limits."""
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = FIRST_SOLUTION_STRATEGIES[_fallback_name(problem, settings)]
    params.local_search_metaheuristic = METAHEURISTICS[settings.metaheuristic]
    params.log_search = settings.log
    if len(problem.stops) > LARGE_PROBLEM_STOPS:
        # single moves of these insertion LNS operators run for seconds past the time limit on large problems
        for operator in SLOW_ON_LARGE_PROBLEMS:
            setattr(params.local_search_operators, operator, optional_boolean_pb2.BOOL_FALSE)
    _set_limits(params, settings, settings.time_limit_s)
    return params


def _stop_when_stalled(routing: pywrapcp.RoutingModel, solutions: int) -> None:
    """End the OR-Tools search after `solutions` solutions in a row without a better one (the best is kept).
    A count of solutions, not a time: on a small layer guided local search otherwise runs to the clock for
    nothing (a part of a few desa converges in well under a second, issue 13)."""
    best: list[int | None] = [None]
    since = [0]

    def at_solution() -> None:
        cost = routing.CostVar().Value()
        if best[0] is None or cost < best[0]:
            best[0], since[0] = cost, 0
            return
        since[0] += 1
        if since[0] >= solutions:
            routing.solver().FinishCurrentSearch()

    routing.AddAtSolutionCallback(at_solution)


def _set_limits(params, settings: SearchSettings, seconds: float) -> None:
    params.time_limit.FromMilliseconds(max(int(seconds * 1000), 1))
    if settings.deterministic:
        params.solution_limit = settings.solution_limit
        # in deterministic mode the wall clock is only a safety net: give OR-Tools the full limit
        params.time_limit.FromMilliseconds(max(int(settings.time_limit_s * 1000), 1))


# ---------------------------------------------------------------- seeding


@dataclass
class Seed:
    routes: list[list[int]]  # stop indices per vehicle
    within_limits: bool
    stats: dict


def pyvrp_seed(
    built: BuiltModel,
    settings: SearchSettings,
    seconds: float,
    initial_routes: Sequence[Sequence[int]] | None = None,
) -> Seed:
    """Solve what PyVRP can express of the problem and return its routes per vehicle (stop indices)."""
    started = time.perf_counter()
    translation = to_pyvrp(built)
    if settings.deterministic:
        criteria = [MaxIterations(settings.seed_iterations), MaxRuntime(settings.time_limit_s)]
    else:
        criteria = [MaxRuntime(max(seconds - (time.perf_counter() - started), 0.01))]
    if settings.stall_iterations:
        criteria.append(NoImprovement(settings.stall_iterations))
    stop = MultipleCriteria(criteria)
    initial = translation.solution(initial_routes) if initial_routes is not None else None
    with warnings.catch_warnings(record=True) as caught:
        # PyVRP warns when it struggles to find a feasible seed; OR-Tools repairs it, the stats say so
        warnings.simplefilter("always")
        result = pyvrp.solve(
            translation.data,
            stop,
            seed=settings.seed,
            collect_stats=False,
            display=settings.log,
            initial_solution=initial,
        )
    elapsed = time.perf_counter() - started
    # in deterministic mode only the clock makes a run irreproducible (the iteration counts do not)
    within = (
        not settings.deterministic
        or result.num_iterations >= settings.seed_iterations
        or elapsed < 0.95 * settings.time_limit_s
    )
    stats = {
        "seed_warnings": sorted({w.category.__name__ for w in caught}),
        "seed_s": round(elapsed, 3),
        "seed_iterations": result.num_iterations,
        "seed_feasible": result.best.is_feasible(),
    }
    routes = translation.routes_of(result.best)
    stats["seed_cost"] = sum(route_cost(built.problem, v, stops) for v, stops in enumerate(routes))
    return Seed(routes, within, stats)


@dataclass(eq=False)
class PyvrpTranslation:
    """The problem as PyVRP ProblemData, and how PyVRP vehicle types map back to the problem's vehicles."""

    built: BuiltModel
    data: pyvrp.ProblemData
    type_chains: list[list[list[int]]]  # per vehicle type: its PyVRP vehicles, each a chain of our vehicles

    def routes_of(self, solution: pyvrp.Solution) -> list[list[int]]:
        stop_of_node = self.built.layout.stop_of_node
        routes: list[list[int]] = [[] for _ in self.built.problem.vehicles]
        free = [list(chains) for chains in self.type_chains]
        for route in solution.routes():
            chain = free[route.vehicle_type()].pop(0)
            trips: dict[int, list[int]] = {}
            for activity in route.schedule():
                if activity.is_client():
                    client_node = self.data.client(activity.idx).location
                    trips.setdefault(activity.trip, []).append(stop_of_node[client_node])
            for k, (_, stops) in enumerate(sorted(trips.items())):
                routes[chain[min(k, len(chain) - 1)]].extend(stops)
        return routes

    def solution(self, routes: Sequence[Sequence[int]]) -> pyvrp.Solution | None:
        """Our per-vehicle routes as a PyVRP solution (a warm start); None if they do not fit its vehicles."""
        client_of_stop = {s: n for n, s in enumerate(self.built.layout.stop_of_node)}
        vehicle_type = {}
        for t, chains in enumerate(self.type_chains):
            for chain in chains:
                for v in chain:
                    vehicle_type[v] = t
        pyvrp_routes = []
        for v, route in enumerate(routes):
            clients = [client_of_stop[s] for s in route if s in client_of_stop]
            if clients and v in vehicle_type:
                pyvrp_routes.append(pyvrp.Route(self.data, clients, vehicle_type[v]))
        try:
            return pyvrp.Solution(self.data, pyvrp_routes)
        except (ValueError, RuntimeError, IndexError):
            return None


def to_pyvrp(built: BuiltModel) -> PyvrpTranslation:
    """PyVRP ProblemData for the plannable stops: one location per model node, one profile per
    (vehicle class, set of stops the vehicle may serve), one vehicle type per distinct vehicle."""
    problem, layout, eligibility = built.problem, built.layout, built.eligibility
    n_stop_nodes = layout.n_stop_nodes
    allowed_nodes: list[set[int]] = [set() for _ in problem.vehicles]
    for node, s_index in enumerate(layout.stop_of_node):
        for v in eligibility.vehicles[s_index]:
            allowed_nodes[v].add(node)

    chains = _reload_chains(problem, allowed_nodes, layout)
    clock = WorkClock.of(problem.vehicles)
    units = CostUnits.for_problem(problem)
    reload_at = _reload_minutes_at(problem, layout, chains)
    profiles: dict[tuple[int, frozenset[int]], int] = {}
    distance_matrices: list[np.ndarray] = []
    duration_matrices: list[np.ndarray] = []
    type_of_key: dict[tuple, int] = {}
    vehicle_types: list[pyvrp.VehicleType] = []
    type_chains: list[list[list[int]]] = []
    for chain in chains:
        head = problem.vehicles[chain[0]]
        allowed = frozenset(allowed_nodes[chain[0]])
        profile_key = (head.class_index, allowed if len(allowed) < n_stop_nodes else frozenset())
        if profile_key not in profiles:
            profiles[profile_key] = len(profiles)
            vclass = problem.vehicle_classes[head.class_index]
            distance_matrices.append(units.distances(_profile_matrix(layout, vclass.distance, allowed)))
            duration_matrices.append(_profile_matrix(layout, vclass.duration, allowed))
        last = problem.vehicles[chain[-1]]
        start_depot = layout.start_node[chain[0]] - n_stop_nodes
        end_depot = layout.end_node[chain[-1]] - n_stop_nodes
        attributes = dict(
            capacity=list(head.capacity),
            start_depot=start_depot,
            end_depot=end_depot,
            fixed_cost=units.cost(head.fixed_cost),
            tw_early=max(clock(head.earliest_start) - reload_at.get(start_depot, 0), 0),
            tw_late=clock(problem.latest_end(last)),
            unit_distance_cost=units.rate(head.cost_per_distance),
            profile=profiles[profile_key],
        )
        if len(chain) == 1 and head.max_duration is not None:
            attributes["shift_duration"] = head.max_duration + reload_at.get(start_depot, 0)
        if len(chain) > 1:
            attributes["reload_depots"] = [start_depot]
            attributes["max_reloads"] = len(chain) - 1
        key = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(attributes.items()))
        if key not in type_of_key:
            type_of_key[key] = len(vehicle_types)
            vehicle_types.append(attributes)
            type_chains.append([])
        type_chains[type_of_key[key]].append(chain)

    data = pyvrp.ProblemData(
        locations=[pyvrp.Location(x=0, y=0) for _ in range(layout.n_nodes)],
        clients=_pyvrp_clients(problem, layout, clock, units),
        depots=[
            pyvrp.Depot(location=node, service_duration=reload_at.get(node - n_stop_nodes, 0))
            for node in layout.depot_nodes
        ],
        vehicle_types=[
            pyvrp.VehicleType(num_available=len(type_chains[t]), **attrs)
            for t, attrs in enumerate(vehicle_types)
        ],
        distance_matrices=distance_matrices,
        duration_matrices=duration_matrices,
    )
    return PyvrpTranslation(built, data, type_chains)


def _reload_minutes_at(
    problem: RoutingProblem, layout: NodeLayout, chains: list[list[int]]
) -> dict[int, int]:
    """Per depot (PyVRP depot index), the reload time of the chained trips that start there.

    PyVRP spends a depot's service duration at the start of every trip: the reload time of chained trips.
    Vehicles leaving that depot start that much earlier, so their first trip still leaves on time."""
    reload_at: dict[int, int] = {}
    for chain in chains:
        if len(chain) > 1:
            depot = layout.start_node[chain[0]] - layout.n_stop_nodes
            reload = max(problem.vehicles[v].reload_minutes for v in chain[1:])
            reload_at[depot] = max(reload_at.get(depot, 0), reload)
    return reload_at


def _pyvrp_clients(
    problem: RoutingProblem, layout: NodeLayout, clock: WorkClock, units: CostUnits
) -> list[pyvrp.Client]:
    """One PyVRP client per stop node: demand, service, window on the work clock, prize if it may be left out."""
    clients = []
    for node, s_index in enumerate(layout.stop_of_node):
        stop = problem.stops[s_index]
        early, late = problem.window(stop)
        clients.append(
            pyvrp.Client(
                location=node,
                delivery=list(stop.demand),
                service_duration=stop.service,
                tw_early=clock(early),
                tw_late=clock(late),
                required=stop.penalty is None,
                prize=0 if stop.penalty is None else min(units.cost(stop.penalty), PYVRP_MAX_VALUE),
            )
        )
    return clients


@dataclass(frozen=True)
class CostUnits:
    """Coarser cost and distance units for the PyVRP seed. PyVRP caps its penalty per minute of lateness
    (time warp) at 1e5; when a minute of driving costs more than that (Kaltim: rupiah per metre), its search
    prefers late routes and never finds a feasible seed. Rates are divided by `rate_divisor` and distances by
    `distance_divisor` until a minute of driving costs at most MAX_COST_PER_MINUTE; costs by both."""

    rate_divisor: int = 1
    distance_divisor: int = 1

    MAX_COST_PER_MINUTE: ClassVar[int] = 1_000
    MIN_RATE: ClassVar[int] = 100  # keeps cost ratios between vehicles within about 1 %

    @classmethod
    def for_problem(cls, problem: RoutingProblem) -> CostUnits:
        max_rate = max((v.cost_per_distance for v in problem.vehicles), default=1)
        speeds = []
        for vclass in problem.vehicle_classes:
            usable = (vclass.duration > 0) & (vclass.duration < UNREACHABLE) & (vclass.distance < UNREACHABLE)
            if usable.any():
                speeds.append(float(np.median(vclass.distance[usable] / vclass.duration[usable])))
        cost_per_minute = max_rate * max(speeds, default=1.0)
        if cost_per_minute <= cls.MAX_COST_PER_MINUTE:
            return cls()
        factor = cost_per_minute / cls.MAX_COST_PER_MINUTE
        rate_divisor = max(1, min(int(max_rate // cls.MIN_RATE), int(factor)))
        return cls(rate_divisor, max(1, int(np.ceil(factor / rate_divisor))))

    def rate(self, cost_per_distance: int) -> int:
        return 0 if cost_per_distance == 0 else max(1, round(cost_per_distance / self.rate_divisor))

    def cost(self, amount: int) -> int:
        return round(amount / (self.rate_divisor * self.distance_divisor))

    def distances(self, matrix: np.ndarray) -> np.ndarray:
        if self.distance_divisor == 1:
            return matrix
        coarse = np.rint(matrix / self.distance_divisor).astype(np.int64)
        coarse[matrix >= PYVRP_MAX_VALUE] = PYVRP_MAX_VALUE
        return coarse


@dataclass(frozen=True)
class WorkClock:
    """Maps clock minutes to working minutes, skipping breaks. PyVRP has no breaks, but a schedule in working
    minutes is one with breaks in clock minutes as long as no service straddles a break (OR-Tools repairs
    those). When vehicles rest at different times, the union of their breaks is skipped: conservative for
    the vehicles that rest less (OR-Tools then uses their extra hours)."""

    breaks: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, vehicles: Sequence) -> WorkClock:
        merged: list[list[int]] = []
        for start, end in sorted({b for v in vehicles for b in v.breaks}):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return cls(tuple((a, b) for a, b in merged))

    def __call__(self, minute: int) -> int:
        return minute - sum(max(0, min(minute, end) - start) for start, end in self.breaks if start < minute)


def _profile_matrix(layout, matrix: np.ndarray, allowed: frozenset[int]) -> np.ndarray:
    nodes = node_matrix(layout, matrix).copy()
    nodes[nodes >= UNREACHABLE] = PYVRP_MAX_VALUE
    if len(allowed) < layout.n_stop_nodes:
        barred = np.array(sorted(set(range(layout.n_stop_nodes)) - allowed), dtype=np.int64)
        nodes[barred, :] = PYVRP_MAX_VALUE
        nodes[:, barred] = PYVRP_MAX_VALUE
        nodes[barred, barred] = 0
    return nodes


def _reload_chains(problem: RoutingProblem, allowed_nodes: list[set[int]], layout) -> list[list[int]]:
    """Vehicles grouped into chains of trips that PyVRP can run as one vehicle with reloads at its depot;
    every other vehicle is a chain of one."""
    followers: dict[int, list[int]] = {}
    for v, vehicle in enumerate(problem.vehicles):
        if vehicle.follows is not None:
            followers.setdefault(vehicle.follows, []).append(v)
    chained: set[int] = set()
    chains: list[list[int]] = []
    for v, vehicle in enumerate(problem.vehicles):
        if vehicle.follows is not None:
            continue
        chain = [v]
        while len(followers.get(chain[-1], [])) == 1:
            chain.append(followers[chain[-1]][0])
        if len(chain) > 1 and _mergeable(problem, chain, allowed_nodes):
            chains.append(chain)
            chained.update(chain)
    for v in range(len(problem.vehicles)):
        if v not in chained:
            chains.append([v])
    return sorted(chains)


def _mergeable(problem: RoutingProblem, chain: list[int], allowed_nodes: list[set[int]]) -> bool:
    head = problem.vehicles[chain[0]]
    for v in chain:
        trip = problem.vehicles[v]
        same = (
            trip.class_index == head.class_index
            and trip.start_loc == trip.end_loc == head.start_loc
            and trip.capacity == head.capacity
            and trip.cost_per_distance == head.cost_per_distance
            and trip.fixed_cost == head.fixed_cost
            and allowed_nodes[v] == allowed_nodes[chain[0]]
        )
        if not same:
            return False
    return True


def read_seed(
    built: BuiltModel, routes: Sequence[Sequence[int]], deadline: float | None = None
) -> tuple[pywrapcp.Assignment | None, list[list[int]]]:
    """Read seed routes (stop indices per vehicle) into the model. A route that cannot be read whole keeps
    its longest readable prefix, then each later stop that still fits (until `deadline`, a perf_counter
    time); the stops left out start unserved for OR-Tools to insert. Returns the assignment (None if not even
    that can be read) and the routes it holds, as routing indices."""
    routing = built.routing
    # a stop on a vehicle that may not take it (a warm start from another plan) is left out before reading:
    # OR-Tools would reject the route and log "Vehicle N is not allowed at index i" for every try
    full = [
        [index for index in route if routing.VehicleVar(index).Contains(v)]
        for v, route in enumerate(_routing_indices(built, routes))
    ]
    assignment = routing.ReadAssignmentFromRoutes(full, True)
    if assignment is not None:
        return assignment, full

    accepted: list[list[int]] = [[] for _ in full]

    def readable(v: int, route: list[int]) -> bool:
        accepted[v] = route
        return routing.ReadAssignmentFromRoutes(accepted, True) is not None

    for v, route in enumerate(full):
        if not route or readable(v, route):
            continue
        low, high = 0, len(route) - 1  # the prefix of length `low` is readable, the whole route is not
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if readable(v, route[:middle]) else (low, middle - 1)
        kept = route[:low]
        for index in route[low + 1 :]:
            if deadline is not None and time.perf_counter() > deadline:
                break
            if readable(v, [*kept, index]):
                kept.append(index)
        accepted[v] = kept
    assignment = routing.ReadAssignmentFromRoutes(accepted, True)
    return assignment, accepted if assignment is not None else [[] for _ in full]


def _routing_indices(built: BuiltModel, routes: Sequence[Sequence[int]]) -> list[list[int]]:
    node_of_stop = built.layout.node_of_stop
    return [
        [built.manager.NodeToIndex(node_of_stop[s]) for s in route if s in node_of_stop] for route in routes
    ]


# ---------------------------------------------------------------- reading the solution


def _unrouted_solution(
    problem: RoutingProblem, eligibility: Eligibility, wall_time_s: float
) -> RoutingSolution:
    unserved = tuple(Unserved(s, reason) for s, reason in sorted(eligibility.reasons.items()))
    penalty = mandatory_penalty(problem)
    return RoutingSolution(
        routes=tuple(_route(problem, v, [], None) for v in range(len(problem.vehicles))),
        unserved=unserved,
        total_distance=0,
        total_cost=0,
        objective=sum(_drop_penalty(problem, u.stop, penalty) for u in unserved),
        wall_time_s=round(wall_time_s, 3),
        status="incomplete" if any(problem.stops[u.stop].penalty is None for u in unserved) else "feasible",
        seed_source="none",
        reproducible=True,
    )


def _drop_penalty(problem: RoutingProblem, stop: int, mandatory: int) -> int:
    penalty = problem.stops[stop].penalty
    return mandatory if penalty is None else penalty


def _read_solution(
    built: BuiltModel,
    solution: pywrapcp.Assignment | None,
    *,
    wall_time_s: float,
    seed_source: str,
    reproducible: bool,
    stats: dict,
) -> RoutingSolution:
    """The solution as plain data; with `solution` None (nothing found) every plannable stop is unserved."""
    problem = built.problem
    routing = built.routing
    time_dimension = built.time_dimension
    routes = []
    served: set[int] = set()
    for v in range(len(problem.vehicles)):
        stops, times, bounds = [], [], None
        if solution is not None:
            index = solution.Value(routing.NextVar(routing.Start(v)))
            while not routing.IsEnd(index):
                stops.append(built.stop_index(index))
                times.append(solution.Min(time_dimension.CumulVar(index)) if time_dimension else None)
                index = solution.Value(routing.NextVar(index))
        if time_dimension is not None and stops:
            bounds = (
                solution.Min(time_dimension.CumulVar(routing.Start(v))),
                solution.Min(time_dimension.CumulVar(routing.End(v))),
            )
        served.update(stops)
        routes.append(_route(problem, v, stops, (times, bounds) if bounds else None))
    unplannable = [Unserved(s, reason) for s, reason in sorted(built.eligibility.reasons.items())]
    dropped = [Unserved(s, DROPPED) for s in built.layout.stop_of_node if s not in served]
    unserved = tuple(sorted(unplannable + dropped, key=lambda u: u.stop))
    total_cost = sum(r.cost for r in routes)
    penalties = sum(_drop_penalty(problem, u.stop, built.mandatory_penalty) for u in unserved)
    if solution is None:
        status = "no_solution"
    elif any(problem.stops[u.stop].penalty is None for u in unserved):
        status = "incomplete"
    else:
        status = "feasible"
    return RoutingSolution(
        routes=tuple(routes),
        unserved=unserved,
        total_distance=sum(r.distance for r in routes),
        total_cost=total_cost,
        objective=total_cost + penalties,
        wall_time_s=round(wall_time_s, 3),
        status=status,
        seed_source=seed_source,
        reproducible=reproducible and solution is not None,
        stats=stats,
    )


def _route(problem: RoutingProblem, v: int, stops: list[int], cumuls) -> VehicleRoute:
    vehicle = problem.vehicles[v]
    load = tuple(sum(problem.stops[s].demand[d] for s in stops) for d in range(len(problem.dimensions)))
    if not stops:
        return VehicleRoute(v, (), vehicle.earliest_start, vehicle.earliest_start, 0, 0, load)
    if cumuls is not None:
        times, (start, end) = cumuls
        visits = tuple(Visit(s, t, t + problem.stops[s].service) for s, t in zip(stops, times, strict=True))
    else:
        visits, start, end = _simulate(problem, v, stops)
    return VehicleRoute(
        v, visits, start, end, route_distance(problem, v, stops), route_cost(problem, v, stops), load
    )


def _simulate(problem: RoutingProblem, v: int, stops: list[int]) -> tuple[tuple[Visit, ...], int, int]:
    """Earliest schedule of a route when the model has no time dimension (no time constraints)."""
    vehicle = problem.vehicles[v]
    duration = problem.vehicle_classes[vehicle.class_index].duration
    clock, here, visits = vehicle.earliest_start, vehicle.start_loc, []
    for s in stops:
        stop = problem.stops[s]
        arrival = max(clock + int(duration[here, stop.loc]), problem.window(stop)[0])
        clock, here = arrival + stop.service, stop.loc
        visits.append(Visit(s, arrival, clock))
    return tuple(visits), vehicle.earliest_start, clock + int(duration[here, vehicle.end_loc])
