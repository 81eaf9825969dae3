"""`planner scenario check FILE...`: every problem of a scenario (and its files) at once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from planner.errors import InputError
from planner.scenario import load_inputs, load_scenario, scenario_summary

scenario_app = typer.Typer(help="Check scenario files.", no_args_is_help=True)

EXIT_BAD_INPUT = 2


@scenario_app.command("check")
def check(
    files: Annotated[list[Path], typer.Argument(help="scenario file(s), e.g. scenarios/kaltim-2024.yaml")],
) -> None:
    """Check scenario files against their network, catalog, fleet and demand; exit 2 if any has a problem.

    Every problem is listed with its file and field path, e.g.
    `scenarios/common/fleet-kaltim.yaml: vehicle_types.truck.modes: must not be empty`.
    """
    console = Console(emoji=False, highlight=False)
    errors = Console(stderr=True, emoji=False, highlight=False)
    table = Table(title="Scenarios")
    for column in ("scenario", "kabupaten", "PPK", "PPS", "TPS", "DPT", "vehicles", "blocked"):
        if column == "scenario":
            table.add_column(column, min_width=20)
        else:
            table.add_column(column, justify="right")
    failed = 0
    for path in files:
        try:
            summary = scenario_summary(load_inputs(load_scenario(path)))
        except InputError as err:
            failed += 1
            errors.print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)
            continue
        table.add_row(
            escape(summary["name"]),
            str(summary["kabupaten"]),
            str(summary["ppk"]),
            f"{summary['pps']:,}",
            f"{summary['tps']:,}",
            f"{summary['dpt']:,}",
            str(summary["vehicles"]),
            str(summary["blocked_legs"]),
        )
    if table.row_count:
        console.print(table)
    if failed:
        errors.print(f"{failed} of {len(files)} scenario file(s) have problems.")
        raise typer.Exit(EXIT_BAD_INPUT)
    console.print(f"{len(files)} scenario file(s) OK.")


def register(app: typer.Typer) -> None:
    app.add_typer(scenario_app, name="scenario")
