"""VRPLIB benchmarks: read CVRP, VRPTW and MDVRPTW instances into the engine's RoutingProblem, solve them with
the planner's own model and search (planner.search.solve, the code path Kaltim plans use) and, for
comparison, with PyVRP as shipped and with plain OR-Tools (SAVINGS + guided local search).

Integer conventions follow the literature so gaps are comparable with the best-known solutions (BKS):
CVRP (Uchoa X) rounds distances to the nearest integer; VRPTW (Gehring-Homberger) uses DIMACS, distances and
times truncated to one decimal (x10); MDVRPTW (Vidal PR) scales by 1000 and rounds ("exact"). These are the
PyVRP `read` round functions of the same names, so PyVRP sees exactly the same integers.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pyvrp
import vrplib
from pyvrp.stop import MaxIterations, MaxRuntime

from planner.errors import InputError
from planner.model import RoutingProblem, Stop, Vehicle, VehicleClass
from planner.search import SearchSettings, solve


@dataclass(frozen=True)
class Rounding:
    name: str  # the PyVRP round function with the same result
    scale: int  # solver integers are this many times the literature's units
    apply: Callable[[np.ndarray], np.ndarray]


ROUNDINGS = {
    "CVRP": Rounding("round", 1, lambda a: np.round(a).astype(np.int64)),
    "VRPTW": Rounding("dimacs", 10, lambda a: (10 * np.asarray(a, dtype=float)).astype(np.int64)),
    "MDVRPTW": Rounding(
        "exact", 1000, lambda a: np.round(1000 * np.asarray(a, dtype=float)).astype(np.int64)
    ),
}
FAMILIES = tuple(ROUNDINGS)
ENGINE = "planner"
PYVRP = "pyvrp"
PLAIN_ORTOOLS = "ortools"
SOLVERS = (ENGINE, PYVRP, PLAIN_ORTOOLS)
NO_TIME_HORIZON = 10**9  # CVRP has no time constraints; any horizon below model.UNREACHABLE will do


@dataclass(frozen=True, eq=False)
class BenchInstance:
    """A VRPLIB instance as a RoutingProblem. Stop i is VRPLIB location `num_depots + i`."""

    name: str
    family: str
    path: Path
    data: dict  # what vrplib.read_instance returned
    problem: RoutingProblem
    rounding: Rounding
    num_depots: int
    bks: float | None  # best-known cost in literature units, from the .sol beside the instance
    bks_routes: tuple[tuple[int, ...], ...] | None  # VRPLIB location indices per route (vehicle order)

    def stop_of_location(self, loc: int) -> int:
        return loc - self.num_depots

    def location_of_stop(self, stop: int) -> int:
        return stop + self.num_depots


def read_instance(path: str | Path) -> BenchInstance:
    """Read a VRPLIB instance (and its .sol, when present) into the engine's problem."""
    path = Path(path)
    if not path.is_file():
        raise InputError("instance file not found", source=path)
    try:
        data = vrplib.read_instance(path)
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise InputError(f"not a readable VRPLIB instance ({err})", source=path) from err
    family = str(data.get("type", "")).strip().upper()
    if family not in ROUNDINGS:
        raise InputError(
            f"TYPE {family or '(missing)'} is not supported; use one of {', '.join(FAMILIES)}", source=path
        )
    missing = [key for key in ("dimension", "edge_weight", "demand", "capacity") if key not in data]
    if family != "CVRP":
        missing += [key for key in ("time_window",) if key not in data]
    if missing:
        raise InputError(f"{family} instance lacks {', '.join(missing)}", source=path)
    rounding = ROUNDINGS[family]
    problem, num_depots = _problem(data, family, rounding, path)
    instance = BenchInstance(
        str(data.get("name", path.stem)), family, path, data, problem, rounding, num_depots, None, None
    )
    solution_path = path.with_suffix(".sol")
    if solution_path.is_file():
        bks, routes = read_bks(instance, solution_path)
        instance = replace(instance, bks=bks, bks_routes=routes)
    return instance


def _problem(data: dict, family: str, rounding: Rounding, path: Path) -> tuple[RoutingProblem, int]:
    depots = np.atleast_1d(data.get("depot", np.array([0]))).astype(int)
    num_depots = len(depots)
    if (depots != np.arange(num_depots)).any():
        raise InputError("depots must be the first locations", source=path)
    n_loc = int(data["dimension"])
    matrix = rounding.apply(data["edge_weight"])
    demand = np.atleast_1d(data["demand"]).astype(np.int64)
    capacity = int(data["capacity"])
    name = str(data.get("name", path.stem))
    if family == "CVRP":
        horizon = NO_TIME_HORIZON
        windows = None
        service = np.zeros(n_loc, dtype=np.int64)
    else:
        tw = rounding.apply(data["time_window"])
        windows = [(int(a), int(b)) for a, b in tw]
        horizon = int(tw[:num_depots, 1].max())
        raw_service = data.get("service_time", 0)
        service = rounding.apply(np.broadcast_to(np.asarray(raw_service, dtype=float), (n_loc,)).copy())
        service[:num_depots] = 0
    stops = tuple(
        Stop(
            loc=loc,
            demand=(int(demand[loc]),),
            service=int(service[loc]),
            window=None if windows is None else windows[loc],
            name=str(loc),
        )
        for loc in range(num_depots, n_loc)
    )
    vehicle_depots = _vehicle_depots(data, family, demand, capacity, num_depots, name)
    max_duration = None
    if "vehicles_max_duration" in data:
        max_duration = int(rounding.apply(np.asarray(float(np.atleast_1d(data["vehicles_max_duration"])[0]))))
    vehicles = tuple(
        Vehicle(
            id=f"v{k + 1}",
            class_index=0,
            start_loc=depot,
            end_loc=depot,
            capacity=(capacity,),
            earliest_start=0 if windows is None else windows[depot][0],
            latest_end=None if windows is None else windows[depot][1],
            max_duration=max_duration,
        )
        for k, depot in enumerate(vehicle_depots)
    )
    vclass = VehicleClass("vrplib", matrix, matrix)
    return RoutingProblem((vclass,), vehicles, stops, horizon, ("demand",), name), num_depots


def _vehicle_depots(
    data: dict, family: str, demand: np.ndarray, capacity: int, num_depots: int, name: str
) -> list[int]:
    if "vehicles_depot" in data:
        return [int(d) - 1 for d in np.atleast_1d(data["vehicles_depot"])]
    if "vehicles" in data:
        return [0] * int(data["vehicles"])
    # CVRP X instances have an unlimited fleet. Twice the minimum (the name's -k<min>, or the capacity bound)
    # is more than any good solution uses (the BKS use k or k + 1) and keeps the OR-Tools model small;
    # a fleet barely above k measurably hampers PyVRP's search on tight instances.
    from_name = re.search(r"-k(\d+)", name)
    minimum = max(
        int(from_name.group(1)) if from_name else 0, math.ceil(demand[num_depots:].sum() / capacity)
    )
    return [0] * (2 * minimum)


def read_bks(instance: BenchInstance, path: Path) -> tuple[float, tuple[tuple[int, ...], ...]]:
    """Best-known cost (literature units) and routes. Some .sol files state the cost in solver integers
    (MDVRPTW), others in literature units (VRPTW); the routes decide which."""
    try:
        solution = vrplib.read_solution(path)
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise InputError(f"not a readable VRPLIB solution ({err})", source=path) from err
    routes = tuple(tuple(int(x) for x in route) for route in solution["routes"])
    stated = float(solution["cost"])
    if not any(routes):
        return stated, routes
    from_routes = routes_cost(instance, _routes_with_depots(instance, routes))
    in_units = min((stated, stated / instance.rounding.scale), key=lambda c: abs(c - from_routes))
    return in_units, routes


def _routes_with_depots(
    instance: BenchInstance, routes: Sequence[Sequence[int]]
) -> list[tuple[int, tuple[int, ...]]]:
    """VRPLIB .sol routes are listed in vehicle order, so route k runs from vehicle k's depot."""
    vehicles = instance.problem.vehicles
    return [(vehicles[k].start_loc if k < len(vehicles) else 0, tuple(r)) for k, r in enumerate(routes) if r]


# ---------------------------------------------------------------- evaluation independent of the solver


def routes_cost(instance: BenchInstance, routes: Iterable[tuple[int, Sequence[int]]]) -> float:
    """Cost in literature units of routes given as (depot location, customer locations)."""
    matrix = instance.rounding.apply(instance.data["edge_weight"])
    total = 0
    for depot, visits in routes:
        path = [depot, *visits, depot]
        total += int(sum(matrix[a, b] for a, b in zip(path[:-1], path[1:], strict=True)))
    return total / instance.rounding.scale


def check_routes(instance: BenchInstance, routes: Sequence[tuple[int, Sequence[int]]]) -> list[str]:
    """Violations of the instance's rules by routes given as (depot location, customer locations): every
    customer once, fleet per depot, capacity, time windows, maximum route duration. [] if feasible."""
    data, rounding, n_dep = instance.data, instance.rounding, instance.num_depots
    problems: list[str] = []
    visited = [loc for _, visits in routes for loc in visits]
    customers = set(range(n_dep, int(data["dimension"])))
    if sorted(visited) != sorted(customers):
        missing = sorted(customers - set(visited))[:5]
        twice = sorted({x for x in visited if visited.count(x) > 1})[:5]
        problems.append(f"customers missing {missing} or visited twice {twice}")
    fleet: dict[int, int] = {}
    for vehicle in instance.problem.vehicles:
        fleet[vehicle.start_loc] = fleet.get(vehicle.start_loc, 0) + 1
    used: dict[int, int] = {}
    for depot, _ in routes:
        used[depot] = used.get(depot, 0) + 1
    problems += [
        f"depot {d}: {n} routes for {fleet.get(d, 0)} vehicles"
        for d, n in used.items()
        if n > fleet.get(d, 0)
    ]
    demand = np.atleast_1d(data["demand"])
    matrix = rounding.apply(data["edge_weight"])
    tw = rounding.apply(data["time_window"]) if "time_window" in data else None
    service = np.broadcast_to(np.asarray(data.get("service_time", 0), dtype=float), (len(matrix),))
    service = rounding.apply(service.copy())
    limit = None
    if "vehicles_max_duration" in data:
        limit = int(rounding.apply(np.asarray(float(np.atleast_1d(data["vehicles_max_duration"])[0]))))
    for k, (depot, visits) in enumerate(routes):
        load = int(sum(demand[loc] for loc in visits))
        if load > int(data["capacity"]):
            problems.append(f"route {k}: load {load} exceeds capacity {data['capacity']}")
        if tw is None or not visits:
            continue
        path = [depot, *visits, depot]
        # no-wait offsets: time from leaving the depot to the start of service at each stop on the path
        offsets = [0]
        for a, b in zip(path[:-1], path[1:], strict=True):
            offsets.append(offsets[-1] + int(service[a]) * (a != depot) + int(matrix[a, b]))
        clock = int(tw[depot][0])
        for i, loc in enumerate(path[1:], start=1):
            clock = max(clock + int(matrix[path[i - 1], loc]), int(tw[loc][0]) if i < len(path) - 1 else 0)
            if clock > tw[loc][1]:
                problems.append(
                    f"route {k}: location {loc} reached at {clock} after its window {tuple(tw[loc])}"
                )
            clock += int(service[loc]) if i < len(path) - 1 else 0
        if limit is not None:
            total = offsets[-1]
            latest_departure = min(
                [int(tw[depot][1])]
                + [int(tw[loc][1]) - offsets[i] for i, loc in enumerate(path[1:-1], start=1)]
            )
            latest_departure = max(latest_departure, int(tw[depot][0]))
            end = max(
                [latest_departure + total]
                + [int(tw[loc][0]) + total - offsets[i] for i, loc in enumerate(path[1:-1], start=1)]
            )
            if end - latest_departure > limit:
                problems.append(f"route {k}: lasts at least {end - latest_departure} > maximum {limit}")
    return problems


# ---------------------------------------------------------------- running solvers


@dataclass(frozen=True)
class BenchResult:
    instance: str
    family: str
    solver: str
    customers: int
    time_limit_s: float
    cost: float | None  # literature units; None when no feasible solution
    bks: float | None
    gap_pct: float | None
    runtime_s: float
    routes: int
    feasible: bool
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def gap_pct(cost: float | None, bks: float | None) -> float | None:
    """Percent above the best known solution; None without a cost or a best known value."""
    if cost is None or not bks:
        return None
    return 100.0 * (cost - bks) / bks


def engine_settings(time_limit_s: float, seed: int = 0, deterministic: bool = False) -> SearchSettings:
    """The planner's own settings (the defaults Kaltim plans use), at this time limit."""
    return SearchSettings(time_limit_s=time_limit_s, seed=seed, deterministic=deterministic)


def plain_ortools_settings(time_limit_s: float, seed: int = 0) -> SearchSettings:
    """Plain OR-Tools on the same model: SAVINGS first solution, guided local search, no seed."""
    return SearchSettings(
        time_limit_s=time_limit_s, seed=seed, first_solution="savings", metaheuristic="guided-local-search"
    )


def run_engine(instance: BenchInstance, settings: SearchSettings, solver: str = ENGINE) -> BenchResult:
    """Solve one VRPLIB instance with the planner's engine; the routes and cost as a BenchResult."""
    solution = solve(instance.problem, settings)
    vehicles = instance.problem.vehicles
    routes = [
        (vehicles[r.vehicle].start_loc, tuple(instance.location_of_stop(s) for s in r.stops))
        for r in solution.used_routes
    ]
    violations = check_routes(instance, routes)
    cost = routes_cost(instance, routes) if not violations else None
    note = "; ".join(violations[:3]) if violations else solution.seed_source
    return BenchResult(
        instance.name,
        instance.family,
        solver,
        len(instance.problem.stops),
        settings.time_limit_s,
        cost,
        instance.bks,
        gap_pct(cost, instance.bks),
        solution.wall_time_s,
        len(routes),
        not violations,
        note,
    )


def run_pyvrp(
    instance: BenchInstance, time_limit_s: float, seed: int = 0, max_iterations: int | None = None
) -> BenchResult:
    """PyVRP as its users run it: pyvrp.read with the family's round function, default parameters."""
    started = time.perf_counter()
    data = pyvrp.read(instance.path, round_func=instance.rounding.name)
    stop = MaxIterations(max_iterations) if max_iterations is not None else MaxRuntime(time_limit_s)
    result = pyvrp.solve(data, stop, seed=seed, collect_stats=False, display=False)
    runtime = time.perf_counter() - started
    routes = []
    for route in result.best.routes():
        depot = data.depot(route.start_depot()).location
        customers = tuple(data.client(a.idx).location for a in route.schedule() if a.is_client())
        routes.append((depot, customers))
    violations = (
        check_routes(instance, routes) if result.best.is_feasible() else ["PyVRP found no feasible solution"]
    )
    cost = routes_cost(instance, routes) if not violations else None
    return BenchResult(
        instance.name,
        instance.family,
        PYVRP,
        len(instance.problem.stops),
        time_limit_s,
        cost,
        instance.bks,
        gap_pct(cost, instance.bks),
        round(runtime, 3),
        len(routes),
        not violations,
        "; ".join(violations[:3]) if violations else f"{result.num_iterations} iterations",
    )


def run_benchmark(
    paths: Sequence[str | Path],
    time_limit_s: float,
    compare: Sequence[str] = (),
    seed: int = 0,
    on_result: Callable[[BenchResult], None] | None = None,
) -> list[BenchResult]:
    """Every instance with the planner engine, then with each solver in `compare`, one after the other."""
    unknown = [c for c in compare if c not in SOLVERS or c == ENGINE]
    if unknown:
        raise InputError(f"cannot compare with {', '.join(unknown)}; choose from {PYVRP}, {PLAIN_ORTOOLS}")
    instances = [read_instance(p) for p in paths]
    results = []
    for instance in instances:
        runs = [lambda i=instance: run_engine(i, engine_settings(time_limit_s, seed))]
        if PYVRP in compare:
            runs.append(lambda i=instance: run_pyvrp(i, time_limit_s, seed))
        if PLAIN_ORTOOLS in compare:
            runs.append(
                lambda i=instance: run_engine(i, plain_ortools_settings(time_limit_s, seed), PLAIN_ORTOOLS)
            )
        for run in runs:
            result = run()
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def mean_gaps(results: Iterable[BenchResult]) -> dict[tuple[str, str], float]:
    """Mean gap (%) per (family, solver) over the instances with a gap."""
    groups: dict[tuple[str, str], list[float]] = {}
    for r in results:
        if r.gap_pct is not None:
            groups.setdefault((r.family, r.solver), []).append(r.gap_pct)
    return {key: sum(gaps) / len(gaps) for key, gaps in groups.items()}


def environment() -> dict:
    """Machine and versions, for the benchmark record."""
    import importlib.metadata
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {}
    for package in ("ortools", "pyvrp", "vrplib", "numpy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }
