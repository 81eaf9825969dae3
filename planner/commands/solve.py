"""`planner solve` (`planner validate` is in planner/commands/validate.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from planner.commands.options import DeterministicOption, TimeLimitOption, WorkersOption, holds_output
from planner.execution import Backend
from planner.outputs import write_outputs
from planner.pipeline import SOLVE_STAGE, load_problem, make_plan, search_settings
from planner.plan import Plan
from planner.scenario import ScenarioInputs
from planner.validate import validate_plan


def kabupaten_names(inputs: ScenarioInputs) -> dict[str, str]:
    frame = inputs.demand.ppk[["kabupaten_code", "kabupaten_name"]].drop_duplicates()
    short = frame["kabupaten_name"].str.replace(r"^(Kabupaten|Kota) ", "", regex=True)
    return dict(zip(frame["kabupaten_code"], short, strict=True))


def summary_table(plan: Plan, names: dict[str, str]) -> Table:
    table = Table(title=f"Plan {escape(plan.scenario.name)}")
    for column, justify in [
        ("kabupaten", "left"),
        ("vehicles", "right"),
        ("trips", "right"),
        ("road km", "right"),
        ("river km", "right"),
        ("sea km", "right"),
        ("PPK done", "left"),
        ("PPS done", "left"),
        ("slack h", "right"),
        ("unserved", "right"),
    ]:
        table.add_column(column, justify=justify)
    for code, k in (plan.kpis.kabupaten if plan.kpis else {}).items():
        km = k.km_by_mode
        table.add_row(
            escape(f"{code} {names.get(code, '')}"),
            str(k.vehicles_used),
            str(k.trips),
            f"{km['road']:,.0f}",
            f"{km['river']:,.0f}",
            f"{km['sea']:,.0f}",
            (k.ppk_completion or "-")[5:16].replace("T", " "),
            (k.pps_completion or "-")[5:16].replace("T", " "),
            f"{k.slack_hours_pps:.1f}" if k.slack_hours_pps is not None else "-",
            f"[bold red]{k.unserved}[/]" if k.unserved else "0",
        )
    return table


class KabupatenProgress:
    """A bar for the whole solve and one row per kabupaten, ticked as each one is planned."""

    def __init__(self, console: Console, kabupaten: tuple[str, ...], names: dict[str, str]) -> None:
        self.bars = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.overall = self.bars.add_task(f"Solving {len(kabupaten)} kabupaten", total=len(kabupaten))
        self.rows = {
            code: self.bars.add_task(escape(f"  {code} {names.get(code, '')}"), total=1) for code in kabupaten
        }

    def __enter__(self) -> KabupatenProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def start(self, stage: str, total: int) -> None:
        pass

    def advance(self, stage: str, detail: str = "") -> None:
        if stage == SOLVE_STAGE and detail in self.rows:
            self.bars.update(self.rows[detail], completed=1)
            self.bars.advance(self.overall)


@holds_output()
def solve(
    scenario: Annotated[Path, typer.Argument(help="scenario file, e.g. scenarios/kaltim-2024.yaml")],
    out: Annotated[Path, typer.Option("--out", help="folder for plan.json, CSV, manifests and map")] = Path(
        "out/plan"
    ),
    time_limit: TimeLimitOption = None,
    workers: WorkersOption = None,
    deterministic: DeterministicOption = False,
) -> None:
    """Schedule every vehicle so that the 14 items reach every PPK and PPS before the deadlines."""
    console = Console()
    started = time.perf_counter()
    problem = load_problem(scenario)
    settings = search_settings(problem, time_limit, True if deterministic else None)
    names = kabupaten_names(problem.inputs)
    with KabupatenProgress(console, problem.kabupaten, names) as progress:
        backend = Backend(workers=workers or problem.scenario.solver.workers)
        plan = make_plan(problem, settings, backend, progress)
    problems = validate_plan(plan, problem.expect, allow_unserved=True)  # the unserved are listed below
    written = write_outputs(plan, problem.inputs, out)
    console.print(summary_table(plan, names))
    for u in plan.unserved:
        console.print(f"  unserved {escape(u.node_id)}: {u.reason} ({escape(u.detail)})", highlight=False)
    console.print(
        f"Wrote {len(written)} files to [bold]{escape(str(out))}[/] in {time.perf_counter() - started:.0f} s "
        f"(plan.json, stops.csv, legs.csv, manifests, map)."
    )
    for code in plan.failed_kabupaten:
        failure = next(u.detail for u in plan.unserved if u.kabupaten_code == code)
        console.print(
            f"[bold red]Not planned: {escape(code)} {escape(names.get(code, ''))}[/] ({escape(failure)})"
        )
    if problems:
        console.print(f"[bold red]The plan fails validation ({len(problems)} problems):[/]")
        for p in problems[:50]:
            console.print(f"  {escape(p)}", highlight=False)
    if problems or plan.failed_kabupaten:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("solve")(solve)
