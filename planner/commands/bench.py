"""`planner bench vrplib`: the routing engine on public VRPLIB instances, side by side with PyVRP."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from planner.commands.options import check_time_limit
from planner.errors import InputError
from planner.fileio import write_json
from planner.vrplib_bench import (
    ENGINE,
    PLAIN_ORTOOLS,
    PYVRP,
    BenchResult,
    environment,
    mean_gaps,
    read_instance,
    run_benchmark,
)

bench_app = typer.Typer(
    help="Benchmarks of the routing engine against the literature and PyVRP.", no_args_is_help=True
)


def _solvers(compare: list[str]) -> list[str]:
    names = [name.strip().lower() for item in compare for name in item.split(",") if name.strip()]
    unknown = [n for n in names if n not in (PYVRP, PLAIN_ORTOOLS)]
    if unknown:
        raise InputError(
            f"--compare {', '.join(unknown)} is not known; use {PYVRP} (PyVRP as shipped) or "
            f"{PLAIN_ORTOOLS} (plain OR-Tools: SAVINGS + guided local search)"
        )
    return list(dict.fromkeys(names))


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def results_table(results: list[BenchResult], title: str) -> Table:
    table = Table(title=title)
    for name, justify in (
        ("instance", "left"),
        ("family", "left"),
        ("customers", "right"),
        ("solver", "left"),
        ("cost", "right"),
        ("BKS", "right"),
        ("gap %", "right"),
        ("runtime s", "right"),
        ("routes", "right"),
        ("feasible", "left"),
    ):
        table.add_column(name, justify=justify)
    for r in results:
        table.add_row(
            escape(r.instance),
            r.family,
            str(r.customers),
            r.solver,
            _fmt(r.cost),
            _fmt(r.bks),
            _fmt(r.gap_pct, 2),
            _fmt(r.runtime_s, 1),
            str(r.routes),
            "yes" if r.feasible else f"[red]no[/] {escape(r.note)}",
        )
    return table


@bench_app.command("vrplib")
def vrplib_command(
    files: Annotated[
        list[Path], typer.Argument(help="VRPLIB instances (.vrp); the .sol beside each gives the BKS")
    ],
    time_limit: Annotated[
        float,
        typer.Option(
            "--time-limit", min=0.1, help="seconds per instance and solver", callback=check_time_limit
        ),
    ] = 10.0,
    compare: Annotated[
        list[str] | None,
        typer.Option(
            "--compare", help=f"also run {PYVRP} and/or {PLAIN_ORTOOLS} (repeatable or comma-separated)"
        ),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the results as JSON here")] = None,
    # PyVRP and OR-Tools take 32-bit seeds
    seed: Annotated[
        int, typer.Option("--seed", help="random seed of every solver", min=0, max=2**31 - 1)
    ] = 0,
) -> None:
    """Solve each instance with the planner's routing engine (the Kaltim code path) and report cost, gap to
    the best-known solution and runtime; with --compare, the same for PyVRP / plain OR-Tools in this run."""
    solvers = _solvers(compare or [])
    for path in files:
        read_instance(path)  # fail on a bad file before spending any solver time
    console = Console()
    if not console.is_terminal:
        console = Console(width=150)  # a log file or pipe: do not squeeze the table to 80 columns
    env = environment()
    results: list[BenchResult] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(
            f"{len(files)} instance(s) x {1 + len(solvers)} solver(s)", total=len(files) * (1 + len(solvers))
        )

        def record(result: BenchResult) -> None:
            results.append(result)
            gap = _fmt(result.gap_pct, 2)
            progress.console.print(
                f"{escape(result.instance)} {result.solver}: cost {_fmt(result.cost)}, gap {gap} %"
            )
            progress.advance(task)

        run_benchmark(files, time_limit, solvers, seed=seed, on_result=record)
    console.print(results_table(results, f"VRPLIB, {time_limit:g} s per instance and solver"))
    gaps = mean_gaps(results)
    for (family, solver), gap in sorted(gaps.items()):
        console.print(f"mean gap {family} {solver}: {gap:.2f} %")
    if json_out is not None:
        write_json(
            json_out,
            {
                "time_limit_s": time_limit,
                "seed": seed,
                "solvers": [ENGINE, *solvers],
                "environment": env,
                "results": [r.as_dict() for r in results],
                "mean_gap_pct": [
                    {"family": family, "solver": solver, "mean_gap_pct": round(gap, 4)}
                    for (family, solver), gap in sorted(gaps.items())
                ],
            },
        )
        console.print(f"Wrote {escape(str(json_out))}")


def register(app: typer.Typer) -> None:
    """Add `planner bench` to the `planner` app."""
    app.add_typer(bench_app, name="bench")
