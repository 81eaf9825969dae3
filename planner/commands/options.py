"""Command-line options shared by several commands, so they read and behave the same everywhere.

Every number a user types is checked against a bound (exit 2 with the option named, never a traceback),
and a command that writes a folder checks and locks its --out before it does any work (holds_output).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from planner.fileio import check_output_folder, folder_lock

# A kabupaten is given at most a day of search: the whole province solves in minutes (BENCHMARKS.md), and
# a day is more than the planning office waits; a larger number is a typo (or 1e308) and overflows timers.
MAX_TIME_LIMIT_S = 86_400.0
# More processes than this is no planning-office or cluster-node machine; each holds a copy of the network.
MAX_WORKERS = 256

Command = TypeVar("Command", bound=Callable[..., Any])


def check_time_limit(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and 0 < value <= MAX_TIME_LIMIT_S):
        raise typer.BadParameter(
            f"must be a number of seconds above 0 and at most {MAX_TIME_LIMIT_S:g} (got {value})"
        )
    return value


def check_workers(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= MAX_WORKERS:
        raise typer.BadParameter(f"must be from 1 to {MAX_WORKERS} (got {value})")
    return value


TimeLimitOption = Annotated[
    float | None,
    typer.Option(
        "--time-limit", help="seconds per kabupaten (default: the scenario's)", callback=check_time_limit
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="parallel processes (default: the scenario's solver.workers)",
        callback=check_workers,
    ),
]
DeterministicOption = Annotated[
    bool,
    typer.Option("--deterministic", help="solution limits instead of the clock: same input, same plan"),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="run on a Dask distributed cluster instead, e.g. tcp://HOST:8786 (workers need the planner installed)",
    ),
]


def holds_output(parameter: str = "out") -> Callable[[Command], Command]:
    """Decorate a command that writes the folder in its `parameter` option: before the command does any
    work, the folder is checked (exit 2 for a file or an unwritable place) and locked, so that a second
    run into the same folder is refused (planner.fileio.folder_lock). A None option is left to the command.
    """

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            out = kwargs.get(parameter)
            if out is None:
                return command(*args, **kwargs)
            check_output_folder(Path(out), f"--{parameter.replace('_', '-')}", replace=True)
            with folder_lock(Path(out), f"--{parameter.replace('_', '-')}"):
                return command(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate
