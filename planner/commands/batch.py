"""`planner batch` (many scenarios) and `planner contingency` (block each leg in turn and rank the legs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from planner.batch import BatchOptions, BatchRow, run_batch
from planner.commands.options import (
    DeterministicOption,
    SchedulerOption,
    TimeLimitOption,
    WorkersOption,
    check_time_limit,
)
from planner.contingency import (
    DEFAULT_TIME_LIMIT_S,
    UNSERVED_REASONS,
    ContingencyOptions,
    ContingencyResult,
    run_contingency,
)
from planner.errors import InputError
from planner.execution import Backend
from planner.fileio import check_output_folder, folder_lock, write_record
from planner.i18n import language
from planner.scenario import load_scenario

STAGE_LABELS = {
    "solve": "Solving scenarios",
    "baseline": "Baseline plan (kabupaten)",
    "cases": "Re-planning with one leg blocked",
}
TOP_ROWS = 15


class RichProgress:
    """planner.execution.Progress on a rich progress bar: one bar per stage."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.bars: dict[str, int] = {}

    def start(self, stage: str, total: int) -> None:
        label = escape(STAGE_LABELS.get(stage, stage))
        self.bars[stage] = self.progress.add_task(label, total=total)

    def advance(self, stage: str, detail: str = "") -> None:
        self.progress.advance(self.bars[stage])


def _progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )


def _backend(workers: int | None, scheduler: str | None, default_workers: int) -> Backend:
    if workers is not None and workers < 1:
        raise InputError("--workers must be at least 1")
    return Backend(workers=workers or default_workers, scheduler=scheduler)


# ---------------------------------------------------------------- batch


def batch_table(rows: list[BatchRow]) -> Table:
    table = Table(title="Batch")
    for column, justify in [
        ("scenario", "left"),
        ("status", "left"),
        ("kabupaten", "right"),
        ("vehicles", "right"),
        ("km", "right"),
        ("unserved", "right"),
        ("wall s", "right"),
    ]:
        table.add_column(column, justify=justify)
    for row in rows:
        status = row.status if not row.problems else f"[bold red]invalid ({row.problems})[/]"
        table.add_row(
            escape(row.scenario),
            status,
            str(row.kabupaten),
            str(row.vehicles),
            f"{row.km:,.0f}",
            f"[bold red]{row.unserved}[/]" if row.unserved else "0",
            f"{row.wall_s:.1f}" if row.status == "solved" else "-",
        )
    return table


def batch(
    scenarios: Annotated[list[Path], typer.Argument(help="scenario files", metavar="SCENARIO...")],
    out: Annotated[Path, typer.Option("--out", help="one folder per scenario is made in here")] = Path(
        "out/batch"
    ),
    time_limit: TimeLimitOption = None,
    deterministic: DeterministicOption = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="solve again even if OUT/<name>/plan.json is of the same scenario file"),
    ] = False,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Solve many scenarios, in parallel over scenarios; a re-run skips those already solved."""
    console = Console()
    backend = _backend(workers, scheduler, default_workers=2)
    options = BatchOptions(out, time_limit, deterministic, force, backend)
    console.print(f"Solving {len(scenarios)} scenario(s) on {escape(backend.describe())}.")
    with _progress_bar(console) as bar:
        rows = run_batch(scenarios, options, RichProgress(bar))
    console.print(batch_table(rows))
    skipped = sum(1 for r in rows if r.status == "skipped")
    if skipped:
        console.print(
            f"{skipped} scenario(s) skipped: already solved in {escape(str(out))} (use --force to redo)."
        )
    console.print(f"Plans in [bold]{escape(str(out))}[/]/<scenario>/, summary in batch-summary.csv.")
    invalid = [r.scenario for r in rows if r.problems]
    if invalid:
        console.print(f"[bold red]Plans failing validation:[/] {escape(', '.join(invalid))}")
        raise typer.Exit(1)


# ---------------------------------------------------------------- contingency


def impact_table(result: ContingencyResult, top: int = TOP_ROWS) -> Table:
    table = Table(title=f"Legs ranked by the impact of their loss (top {min(top, len(result.rows))})")
    table.add_column("#", justify="right")
    table.add_column("leg", overflow="fold", ratio=3)
    for column in ("cut off PPS", "late PPS", "extra veh-h", "extra km"):
        table.add_column(column, justify="right", ratio=1)
    for row in result.rows[:top]:
        reasons = ", ".join(f"{row[r]} {r}" for r in UNSERVED_REASONS if row[r])
        cut = f"[bold red]{row['newly_unserved_pps']}[/] ({escape(reasons)})" if reasons else "0"
        unused = "" if row["replanned"] else " (unused)"
        table.add_row(
            str(row["rank"]),
            escape(f"{row['leg_id']}{unused}"),
            cut,
            str(row["late_pps"]),
            f"{row['extra_vehicle_hours']:+.1f}",
            f"{row['extra_km']:+.1f}",
        )
    return table


def contingency(
    scenario: Annotated[Path, typer.Argument(help="scenario file")],
    legs: Annotated[
        str,
        typer.Option(
            "--legs",
            help="`used` (legs of the baseline routes), `all` (every leg in the scenario's kabupaten) "
            "or a text/CSV file of leg ids; access links are left out of used and all",
        ),
    ] = "used",
    limit: Annotated[
        int | None, typer.Option("--limit", help="test only the first N legs (busiest first)", min=1)
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="default: out/contingency/<scenario name>")
    ] = None,
    time_limit: Annotated[
        float,
        typer.Option(
            "--time-limit",
            help="seconds per kabupaten; cases run in deterministic mode, so this is only a safety limit",
            callback=check_time_limit,
        ),
    ] = DEFAULT_TIME_LIMIT_S,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    pairs: Annotated[
        Path | None,
        typer.Option(
            "--pairs",
            help="N-2: a file of leg pairs (two leg ids a line), each pair blocked together; replaces --legs",
        ),
    ] = None,
    lang: Annotated[
        str, typer.Option("--lang", help="language of the summary ringkasan.html: id or en")
    ] = "id",
    from_scratch: Annotated[
        bool,
        typer.Option(
            "--from-scratch",
            help="plan each case's kabupaten again from scratch instead of re-planning only the trips on the leg",
        ),
    ] = False,
) -> None:
    """Block each leg in turn (N-1), plan again, and rank the legs by late or unreachable PPS, extra hours and km."""
    console = Console()
    checked = load_scenario(scenario)
    backend = _backend(workers, scheduler, default_workers=checked.solver.workers)
    out = check_output_folder(out or Path("out") / "contingency" / checked.name)
    language(lang)  # an unknown language fails before any work
    options = ContingencyOptions(
        legs=legs,
        limit=limit,
        time_limit_s=time_limit,
        backend=backend,
        incremental=not from_scratch,
        pairs=pairs,
        lang=lang,
    )
    console.print(f"Contingency analysis of {escape(checked.name)} on {escape(backend.describe())}.")
    # cases/ fills up one atomic file per case (a re-run resumes from them); outputs.json, written last,
    # marks the folder whole
    with folder_lock(out), _progress_bar(console) as bar:
        result = run_contingency(scenario, out, options, RichProgress(bar))
        write_record(out)
    console.print(impact_table(result))
    _print_contingency_summary(console, result, out)


def _print_contingency_summary(console: Console, result: ContingencyResult, out: Path) -> None:
    done = f"{result.replanned} re-planned"
    if result.reused:
        done += f", {result.reused} skipped (finished in an earlier run)"
    if result.unused:
        done += f", {result.unused} not used by the plan (no impact, nothing to re-plan)"
    console.print(
        f"{result.tested} legs tested: {done}." + (" Baseline from an earlier run." * result.baseline_reused)
    )
    if result.left_out_blocked:
        console.print(
            f"{len(result.left_out_blocked)} leg(s) of the file are already blocked in the scenario: left out."
        )
    failed = [row["leg_id"] for row in result.rows if row["planner_error"]]
    if failed:
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        console.print(
            f"[yellow]The planner itself failed on {len(failed)} case(s): {escape(shown)}. Their PPS count as "
            "cut off (column planner_error); the impact of those legs is not known. Please report it.[/]"
        )
    if result.case_wall_s:
        mean = sum(result.case_wall_s) / len(result.case_wall_s)
        console.print(
            f"Solving time per case: {mean:.1f} s on average, {max(result.case_wall_s):.1f} s at most."
        )
    console.print(
        f"Wrote [bold]{escape(str(out / 'contingency.csv'))}[/], {escape(str(out / 'contingency-map.html'))} "
        f"and {escape(str(out / 'ringkasan.html'))} "
        f"in {result.wall_s:.0f} s."
    )


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)
    app.command("contingency")(contingency)
