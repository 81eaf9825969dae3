"""Where jobs run: in this process, a local process pool, or a Dask distributed cluster.

`run_jobs` is the one way the planner runs many independent jobs: the kabupaten of a solve
(planner.pipeline), the scenarios of a batch (planner.batch) and the cases of a contingency analysis
(planner.contingency). It calls a picklable `function(shared, job)` for every job and yields the results as
they complete, so a progress bar can move. `shared` (read-only inputs) is sent to each worker once: scattered
to every Dask worker, or handed to each local worker process by its initializer. Callers never rely on
completion order: they put results back in job order.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Protocol, TypeVar

from planner.errors import InputError

Shared = TypeVar("Shared")
Job = TypeVar("Job")
Result = TypeVar("Result")

DASK_CONNECT_TIMEOUT_S = 20


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
