"""The planning pipeline, written once: scenario -> Problem -> one dispatch task per kabupaten -> Plan.

    problem = load_problem("scenarios/kaltim-2024.yaml")
    plan = make_plan(problem, search_settings(problem), Backend(workers=2))

Every caller (the CLI's solve, batch, re-plan and contingency, the benches, the tests and the notebooks) goes
through these functions. Writing the plan's files is planner.outputs; checking it is planner.validate.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from planner.dispatch import KabupatenResult, KabupatenTask, Trip, plan_kabupaten
from planner.execution import Backend, NoProgress, Progress, run_jobs
from planner.goods import add_goods
from planner.kpis import plan_kpis
from planner.nodes import kabupaten_of
from planner.plan import Calendar, Plan, Route, ScenarioRef, Stop, Unserved, file_hash
from planner.scenario import Scenario, ScenarioInputs, load_inputs, load_scenario
from planner.settings import SearchSettings
from planner.validate import Expectations, expectations

SOLVE_STAGE = "kabupaten"  # the progress stage of a solve; each step's detail is the kabupaten code
# a plan's search stops when it stops improving: (PyVRP iterations, OR-Tools solutions) without a better one;
# measured on Kaltim (BENCHMARKS.md, "Reliability of the default solve"); a scenario's solver.options override it
PLAN_STALL = (300, 30)
SHARE_BOUNDS = (0.3, 2.5)  # a kabupaten's share of the mean time limit, by its size (PPS + PPK)


@dataclass(frozen=True)
class Problem:
    """What a plan is made from, read once from a scenario.

    `inputs`: the scenario with its network, demand, fleet and catalog as loaded; `expect`: the same as plain
    data the dispatcher and the validator work on (goods per PPS and PPK, vehicles, calendar)."""

    inputs: ScenarioInputs
    expect: Expectations

    @property
    def scenario(self) -> Scenario:
        return self.inputs.scenario

    @property
    def kabupaten(self) -> tuple[str, ...]:
        return tuple(self.inputs.kabupaten)

    @property
    def network_path(self) -> Path:
        return self.scenario.resolved_paths().network


def problem_of(inputs: ScenarioInputs) -> Problem:
    """The problem of loaded inputs (e.g. after a re-plan's change is applied to them)."""
    return Problem(inputs, expectations(inputs))


def load_problem(scenario: str | Path | Scenario) -> Problem:
    """The problem of a scenario file (checked first) or of an already checked Scenario; bad input raises
    planner.errors.InputError naming the file and field."""
    checked = scenario if isinstance(scenario, Scenario) else load_scenario(Path(scenario))
    return problem_of(load_inputs(checked))


def search_settings(
    problem: Problem, time_limit_s: float | None = None, deterministic: bool | None = None
) -> SearchSettings:
    """The scenario's solver settings; `time_limit_s` (per kabupaten, on average) and `deterministic`
    override them when given."""
    solver = problem.scenario.solver
    options = {"stall_iterations": PLAN_STALL[0], "stall_solutions": PLAN_STALL[1], **solver.options}
    if solver.solution_limit is not None:
        options["solution_limit"] = solver.solution_limit
    return SearchSettings(
        time_limit_s=time_limit_s or solver.time_limit_s,
        seed=solver.seed,
        deterministic=solver.deterministic if deterministic is None else deterministic,
        **options,
    )


def kabupaten_tasks(problem: Problem, settings: SearchSettings) -> list[KabupatenTask]:
    """One dispatch task per kabupaten, in the scenario's order. `settings.time_limit_s` is the mean per
    kabupaten: a kabupaten gets a share of it by its number of PPS and PPK (within SHARE_BOUNDS)."""
    expect = problem.expect
    size: dict[str, int] = defaultdict(int)
    for node in (*expect.pps_goods, *expect.ppk_own):
        size[kabupaten_of(node)] += 1
    mean_size = sum(size[c] for c in problem.kabupaten) / max(len(problem.kabupaten), 1)
    tasks = []
    for code in problem.kabupaten:
        share = min(SHARE_BOUNDS[1], max(SHARE_BOUNDS[0], size[code] / mean_size)) if mean_size else 1.0
        tasks.append(_task(problem, code, replace(settings, time_limit_s=settings.time_limit_s * share)))
    return tasks


def _task(problem: Problem, code: str, settings: SearchSettings) -> KabupatenTask:
    expect = problem.expect
    fleet = [expect.vehicles[v.vehicle_id] for v in problem.inputs.fleet.vehicles if v.kabupaten_code == code]
    pps = {p: g for p, g in expect.pps_goods.items() if kabupaten_of(p) == code}
    ppk_own = {p: g for p, g in expect.ppk_own.items() if kabupaten_of(p) == code}
    members: dict[str, list[str]] = defaultdict(list)
    for p in pps:
        if p not in expect.assigned:  # a pinned desa's goods go by its rule's port, not by its PPK
            members[expect.pps_ppk[p]].append(p)
    return KabupatenTask(
        kabupaten_code=code,
        network=problem.inputs.network,
        vehicles=tuple(sorted(fleet, key=lambda v: v.vehicle_id)),
        items=tuple(expect.units.values()),
        ppk_goods={p: add_goods(own, *(pps[x] for x in members[p])) for p, own in ppk_own.items()},
        ppk_own=ppk_own,
        pps_goods=pps,
        pps_ppk={p: expect.pps_ppk[p] for p in pps},
        start_minute_of_day=expect.start_minute_of_day,
        ppk_deadline=expect.minute(expect.ppk_deadline),
        pps_deadline=expect.minute(expect.pps_deadline),
        settings=settings,
        pps_kits={p: expect.pps_kits[p] for p in pps if p in expect.pps_kits},
        assigned={p: expect.assigned[p] for p in pps if p in expect.assigned},
    )


def _dispatch(_shared: None, task: KabupatenTask) -> KabupatenResult:
    return plan_kabupaten(task)


def run_tasks(
    tasks: list[KabupatenTask], backend: Backend = Backend(), progress: Progress | None = None
) -> list[KabupatenResult]:
    """Dispatch every kabupaten on `backend`; results in task order. `progress` advances stage SOLVE_STAGE
    once per kabupaten done, with its code as the detail. A kabupaten that fails comes back with its failure
    recorded (KabupatenResult.failure), never as an exception."""
    progress = progress or NoProgress()
    progress.start(SOLVE_STAGE, len(tasks))
    # biggest kabupaten first, so the pool does not end on one long solve
    order = sorted(range(len(tasks)), key=lambda i: (-len(tasks[i].pps_goods), i))
    results: dict[int, KabupatenResult] = {}
    for index, result in run_jobs(_dispatch, None, [tasks[i] for i in order], backend):
        results[order[index]] = result
        progress.advance(SOLVE_STAGE, result.kabupaten_code)
    return [results[i] for i in range(len(tasks))]


def trip_route(trip: Trip, kabupaten_code: str, start: datetime) -> Route:
    """A dispatched trip (minutes after the plan start `start`) as a plan route (local datetimes)."""

    def at(minute: int) -> datetime:
        return start + timedelta(minutes=int(minute))

    stops = [
        Stop(
            node_id=v.node_id,
            arrival=at(v.arrival),
            departure=at(v.departure),
            deliver=dict(v.deliver),
            load=dict(v.load),
            tps_kits=list(v.tps_kits),
        )
        for v in trip.visits
    ]
    return Route(
        vehicle_id=trip.vehicle_id,
        vehicle_type=trip.type_id,
        kabupaten_code=kabupaten_code,
        base=trip.base,
        tier=trip.tier,
        trip=trip.trip,
        stops=stops,
        legs=list(trip.legs),
    )


def unserved_of(result: KabupatenResult) -> list[Unserved]:
    """The stops a kabupaten's dispatch left unserved, as plan entries."""
    return [
        Unserved(node_id=m.node_id, kabupaten_code=result.kabupaten_code, reason=m.reason, detail=m.detail)
        for m in result.unserved
    ]


def assemble_plan(problem: Problem, results: list[KabupatenResult]) -> Plan:
    """The plan of the dispatched kabupaten: routes, unserved stops, failed kabupaten and KPIs."""
    scenario, expect = problem.scenario, problem.expect
    routes = [trip_route(trip, r.kabupaten_code, expect.start) for r in results for trip in r.trips]
    unserved = [u for r in results for u in unserved_of(r)]
    plan = Plan(
        scenario=ScenarioRef(
            name=scenario.name,
            hash=file_hash(scenario.source) if scenario.source else "",
            path=str(scenario.source) if scenario.source else None,
        ),
        network=str(problem.network_path),
        calendar=Calendar(
            timezone=scenario.calendar.timezone,
            start=expect.start,
            ppk_deadline=expect.ppk_deadline,
            pps_deadline=expect.pps_deadline,
        ),
        blocked_legs=sorted(scenario.blocked_legs),
        routes=routes,
        unserved=sorted(unserved, key=lambda u: u.node_id),
        failed_kabupaten=sorted(r.kabupaten_code for r in results if r.failure),
    )
    return with_kpis(plan, problem.expect)


def with_kpis(plan: Plan, expect: Expectations) -> Plan:
    """`plan` with its KPIs computed from its routes."""
    return plan.model_copy(update={"kpis": plan_kpis(plan, expect, expect.kabupaten_codes())})


def make_plan(
    problem: Problem,
    settings: SearchSettings,
    backend: Backend = Backend(),
    progress: Progress | None = None,
) -> Plan:
    """Plan every kabupaten of `problem` with `settings` on `backend` (this process by default).

    Returns the assembled plan; stops that cannot be served are listed in `plan.unserved` with a reason, and
    a kabupaten whose dispatch failed in `plan.failed_kabupaten`. Check it with planner.validate.validate_plan
    and write it with planner.outputs.write_outputs."""
    return assemble_plan(problem, run_tasks(kabupaten_tasks(problem, settings), backend, progress))
