"""Batch runs: many scenarios (`planner batch`) on a local process pool or a Dask distributed cluster.

`run_jobs` is the one execution backend used by batch solves and by contingency analysis
(planner.contingency): it calls a picklable `function(shared, job)` for every job and yields the results as
they complete, so a progress bar can move. `shared` is sent to each Dask worker once (scattered), or with
every job to a local process. Callers never rely on completion order: they put results back in job order.

Workers do only the solving. The client loads the scenarios, builds the kabupaten tasks (plain data that
carry their network, so a worker on another machine needs no input files, only the planner package), and
writes every output itself, so plans land in the client's output folder whichever backend ran them.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, TypeVar

import pandas as pd

from planner.dispatch import KabupatenResult, KabupatenTask
from planner.errors import InputError
from planner.fileio import check_output_folder, folder_lock, record_problems, write_csv
from planner.plan import file_hash, read_plan
from planner.scenario import Scenario, ScenarioInputs, display_path, load_inputs, load_scenario
from planner.solve import (
    assemble_plan,
    expectations,
    kabupaten_tasks,
    run_tasks,
    search_settings,
    write_outputs,
)
from planner.validate import validate_plan

Shared = TypeVar("Shared")
Job = TypeVar("Job")
Result = TypeVar("Result")

DASK_CONNECT_TIMEOUT_S = 20


# ---------------------------------------------------------------- execution backends


@dataclass(frozen=True)
class Backend:
    """Where jobs run: in this process (workers=1), a local process pool, or a Dask cluster (scheduler)."""

    workers: int = 1
    scheduler: str | None = None  # e.g. tcp://10.0.0.5:8786
    connect_timeout_s: float = DASK_CONNECT_TIMEOUT_S

    def describe(self) -> str:
        if self.scheduler:
            return f"Dask cluster {self.scheduler}"
        if self.workers <= 1:
            return "this process"
        return f"{self.workers} local processes"


class Progress(Protocol):
    """What long runs report: a stage with its number of steps, then one call per finished step."""

    def start(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, detail: str = "") -> None: ...


class NoProgress:
    def start(self, stage: str, total: int) -> None:
        pass

    def advance(self, stage: str, detail: str = "") -> None:
        pass


def run_jobs(
    function: Callable[[Shared, Job], Result],
    shared: Shared,
    jobs: Sequence[Job],
    backend: Backend,
) -> Iterator[tuple[int, Result]]:
    """Yield (job index, function(shared, job)) for every job, in order of completion.

    `function` must be importable from a module (not a lambda or a closure) and its arguments picklable.
    """
    if not jobs:
        return
    if backend.scheduler:
        yield from _run_on_dask(function, shared, jobs, backend.scheduler, backend.connect_timeout_s)
    elif backend.workers <= 1 or len(jobs) == 1:
        for index, job in enumerate(jobs):
            yield index, function(shared, job)
    else:
        # spawn: a fresh interpreter per worker; forking a process that runs OR-Tools threads is unsafe
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=min(backend.workers, len(jobs)),
            mp_context=context,
            initializer=_receive_shared,
            initargs=(shared,),  # sent once per worker, not once per job (the network is megabytes)
        ) as pool:
            futures = {pool.submit(_call_with_shared, function, job): index for index, job in enumerate(jobs)}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            finally:
                for future in futures:
                    future.cancel()


_WORKER_SHARED: list = []  # in a pool worker process only: the shared inputs, set once by its initializer


def _receive_shared(shared: Shared) -> None:
    _WORKER_SHARED[:] = [shared]


def _call_with_shared(function: Callable[[Shared, Job], Result], job: Job) -> Result:
    return function(_WORKER_SHARED[0], job)


def _run_on_dask(
    function: Callable[[Shared, Job], Result],
    shared: Shared,
    jobs: Sequence[Job],
    address: str,
    timeout_s: float,
) -> Iterator[tuple[int, Result]]:
    from dask.distributed import Client
    from dask.distributed import as_completed as dask_completed

    try:
        client = Client(address, timeout=f"{timeout_s}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as err:
        raise InputError(
            f"cannot connect to the Dask scheduler at {address} ({type(err).__name__}: {err}); "
            f"start one with `dask scheduler` and workers with `dask worker {address}`",
            source="--scheduler",
        ) from None
    with client:
        # a list, so that scatter sends the object whole (it would split a dict or a list into parts)
        [shared_future] = client.scatter([shared], broadcast=True, hash=False)
        futures = [client.submit(function, shared_future, job, pure=False) for job in jobs]
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in dask_completed(futures, loop=client.loop):
                yield index[future.key], future.result()
        finally:
            client.cancel(futures)


# ---------------------------------------------------------------- batch solves

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
    results = run_tasks(list(job.tasks), workers=1)
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
    total = plan.kpis.get("total", {})
    return BatchRow(
        scenario=scenario.name,
        path=display_path(scenario.source),
        status="skipped",
        kabupaten=len(plan.kpis.get("kabupaten", {})),
        vehicles=int(total.get("vehicles_used", 0)),
        trips=int(total.get("trips", 0)),
        km=round(sum(total.get("km_by_mode", {}).values()), 1),
        unserved=len(plan.unserved),
        problems=0,
        wall_s=0.0,
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
    pending: list[tuple[Scenario, ScenarioInputs]] = []
    for scenario in scenarios:
        done = None if options.force else finished_plan_row(scenario, options.out_dir / scenario.name)
        if done is not None:
            rows[scenario.name] = done
        else:
            pending.append((scenario, load_inputs(scenario)))

    jobs = []
    expects = {}
    for scenario, inputs in pending:
        expect = expectations(inputs)
        deterministic = True if options.deterministic else None
        settings = search_settings(inputs, options.time_limit_s, deterministic)
        expects[scenario.name] = expect
        jobs.append(ScenarioJob(scenario.name, tuple(kabupaten_tasks(inputs, expect, settings))))
    # biggest first, so that the pool does not end on one long solve
    order = sorted(range(len(jobs)), key=lambda i: (-sum(len(t.pps_goods) for t in jobs[i].tasks), i))
    progress.start("solve", len(jobs))
    ordered = [jobs[i] for i in order]
    for index, solution in run_jobs(solve_scenario_job, None, ordered, options.backend):
        scenario, inputs = pending[order[index]]
        expect = expects[scenario.name]
        plan = assemble_plan(inputs, expect, solution.results, scenario.resolved_paths().network)
        problems = validate_plan(plan, expect, allow_unserved=True)  # the unserved are counted apart
        target = options.out_dir / scenario.name
        write_outputs(plan, inputs, target)
        total = plan.kpis["total"]
        rows[scenario.name] = BatchRow(
            scenario=scenario.name,
            path=display_path(scenario.source or Path()),
            status="solved",
            kabupaten=len(inputs.kabupaten),
            vehicles=int(total["vehicles_used"]),
            trips=int(total["trips"]),
            km=round(sum(total["km_by_mode"].values()), 1),
            unserved=len(plan.unserved),
            problems=len(problems),
            wall_s=round(solution.wall_s, 1),
            out_dir=str(target),
        )
        progress.advance("solve", scenario.name)
    ordered_rows = [rows[s.name] for s in scenarios]
    write_batch_summary(ordered_rows, options.out_dir / "batch-summary.csv")
    return ordered_rows


def write_batch_summary(rows: Sequence[BatchRow], path: Path) -> Path:
    frame = pd.DataFrame([row.__dict__ for row in rows], columns=list(BatchRow.__dataclass_fields__))
    return write_csv(frame, path)
