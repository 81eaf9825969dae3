"""Batch runs: many scenarios (`planner batch`) on a local process pool or a Dask distributed cluster
(planner.execution); each scenario goes through the one pipeline (planner.pipeline).

Workers do only the solving. The client loads the scenarios, builds the kabupaten tasks (plain data that
carry their network, so a worker on another machine needs no input files, only the planner package), and
writes every output itself, so plans land in the client's output folder whichever backend ran them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from planner.dispatch import KabupatenResult, KabupatenTask
from planner.errors import InputError
from planner.execution import Backend, NoProgress, Progress, run_jobs
from planner.fileio import check_output_folder, folder_lock, record_problems, write_csv
from planner.outputs import write_outputs
from planner.pipeline import Problem, assemble_plan, kabupaten_tasks, load_problem, run_tasks, search_settings
from planner.plan import Plan, file_hash, read_plan
from planner.scenario import Scenario, display_path, load_scenario
from planner.validate import validate_plan

Status = Literal["solved", "skipped"]


@dataclass(frozen=True)
class BatchOptions:
    out_dir: Path
    time_limit_s: float | None = None  # per kabupaten; None: each scenario's own
    deterministic: bool = False
    force: bool = False  # solve again even when the output folder holds a plan of the same scenario file
    backend: Backend = Backend()


@dataclass(frozen=True)
class BatchRow:
    scenario: str
    path: str
    status: Status
    kabupaten: int
    vehicles: int
    trips: int
    km: float
    unserved: int
    problems: int  # validation problems of the plan (0 for a valid plan)
    wall_s: float  # solving time in the worker; 0 when skipped
    out_dir: str


@dataclass(frozen=True)
class ScenarioJob:
    """What a worker needs to solve one scenario: its kabupaten tasks (with their network)."""

    name: str
    tasks: tuple[KabupatenTask, ...]


@dataclass(frozen=True)
class ScenarioSolution:
    name: str
    results: tuple[KabupatenResult, ...]
    wall_s: float


def solve_scenario_job(_shared: None, job: ScenarioJob) -> ScenarioSolution:
    """Solve every kabupaten of one scenario, one after another (the pool is parallel over scenarios)."""
    started = time.perf_counter()
    results = run_tasks(list(job.tasks))
    return ScenarioSolution(job.name, tuple(results), time.perf_counter() - started)


def load_batch(paths: Sequence[Path]) -> list[Scenario]:
    """Check every scenario file; one InputError lists the problems of all of them."""
    scenarios: list[Scenario] = []
    problems: list[str] = []
    for path in paths:
        try:
            scenarios.append(load_scenario(path))
        except InputError as err:
            problems += err.problems or [str(err)]
    names: dict[str, list[str]] = {}
    for scenario in scenarios:
        names.setdefault(scenario.name, []).append(display_path(Path(scenario.source or "")))
    problems += [
        f"scenario name {name!r} is used by {', '.join(files)}: each scenario needs its own output folder"
        for name, files in names.items()
        if len(files) > 1
    ]
    if problems:
        raise InputError(
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in the batch", problems=problems
        )
    return scenarios


def finished_plan_row(scenario: Scenario, out_dir: Path) -> BatchRow | None:
    """The summary of an earlier run of this very scenario file in `out_dir`, or None if there is none.

    An earlier run counts only if its completion record (outputs.json, written last) lists every file
    with the hash it has now: a folder of an interrupted run, or with a file deleted or edited, is solved again.
    """
    plan_path = out_dir / "plan.json"
    if scenario.source is None or record_problems(out_dir):
        return None
    try:
        plan = read_plan(plan_path)
    except InputError:
        return None  # unreadable or from another format version: solve again
    if plan.scenario.hash != file_hash(scenario.source):
        return None
    if plan.kpis is None:
        return None  # not a plan the planner wrote: solve again
    return plan_row(scenario, plan, "skipped", 0, 0.0, out_dir)


def plan_row(
    scenario: Scenario, plan: Plan, status: Status, problems: int, wall_s: float, out_dir: Path
) -> BatchRow:
    """The batch summary row of a scenario's plan (which carries its KPIs)."""
    assert plan.kpis is not None
    total = plan.kpis.total
    return BatchRow(
        scenario=scenario.name,
        path=display_path(scenario.source or Path()),
        status=status,
        kabupaten=len(plan.kpis.kabupaten),
        vehicles=total.vehicles_used,
        trips=total.trips,
        km=round(sum(total.km_by_mode.values()), 1),
        unserved=len(plan.unserved),
        problems=problems,
        wall_s=round(wall_s, 1),
        out_dir=str(out_dir),
    )


def run_batch(
    paths: Sequence[Path], options: BatchOptions, progress: Progress | None = None
) -> list[BatchRow]:
    """Solve every scenario into options.out_dir/<scenario name>/; rows in the order of `paths`."""
    progress = progress or NoProgress()
    check_output_folder(options.out_dir)
    scenarios = load_batch(paths)
    for scenario in scenarios:  # each plan replaces its folder: refuse someone's folder before solving
        check_output_folder(options.out_dir / scenario.name, f"--out {options.out_dir}:", replace=True)
    with folder_lock(options.out_dir):
        return _run_locked_batch(scenarios, options, progress)


def _run_locked_batch(scenarios: list[Scenario], options: BatchOptions, progress: Progress) -> list[BatchRow]:
    rows: dict[str, BatchRow] = {}
    pending: list[tuple[Scenario, Problem]] = []
    for scenario in scenarios:
        done = None if options.force else finished_plan_row(scenario, options.out_dir / scenario.name)
        if done is not None:
            rows[scenario.name] = done
        else:
            pending.append((scenario, load_problem(scenario)))

    jobs = []
    for scenario, problem in pending:
        settings = search_settings(problem, options.time_limit_s, True if options.deterministic else None)
        jobs.append(ScenarioJob(scenario.name, tuple(kabupaten_tasks(problem, settings))))
    # biggest first, so that the pool does not end on one long solve
    order = sorted(range(len(jobs)), key=lambda i: (-sum(len(t.pps_goods) for t in jobs[i].tasks), i))
    progress.start("solve", len(jobs))
    ordered = [jobs[i] for i in order]
    for index, solution in run_jobs(solve_scenario_job, None, ordered, options.backend):
        scenario, problem = pending[order[index]]
        plan = assemble_plan(problem, list(solution.results))
        problems = validate_plan(plan, problem.expect, allow_unserved=True)  # the unserved are counted apart
        target = options.out_dir / scenario.name
        write_outputs(plan, problem.inputs, target)
        rows[scenario.name] = plan_row(scenario, plan, "solved", len(problems), solution.wall_s, target)
        progress.advance("solve", scenario.name)
    ordered_rows = [rows[s.name] for s in scenarios]
    write_batch_summary(ordered_rows, options.out_dir / "batch-summary.csv")
    return ordered_rows


def write_batch_summary(rows: Sequence[BatchRow], path: Path) -> Path:
    """One CSV row per scenario of the batch (BatchRow fields); returns the path written."""
    frame = pd.DataFrame([row.__dict__ for row in rows], columns=list(BatchRow.__dataclass_fields__))
    return write_csv(frame, path)
