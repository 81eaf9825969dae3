"""Command-line options shared by several commands, so they read and behave the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

TimeLimitOption = Annotated[
    float | None, typer.Option("--time-limit", help="seconds per kabupaten (default: the scenario's)")
]
WorkersOption = Annotated[
    int | None, typer.Option("--workers", help="parallel processes (default: the scenario's solver.workers)")
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
