"""`planner demand SCENARIO`: TPS, DPT, items, kg and m3 per PPS and PPK, as CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from planner.demand import Demand, write_demand
from planner.fileio import check_output_folder, output_folder
from planner.scenario import load_inputs, load_scenario


def totals_table(demand: Demand, title: str) -> Table:
    """Per kabupaten: PPK, PPS, TPS, DPT, ballots of one election, kg, m3; and a total row."""
    totals = demand.kabupaten_totals()
    ballot_items = [i for i in demand.items if i.rule == "per_voter_reserve"]
    table = Table(title=title)
    table.add_column("kabupaten", min_width=18)
    ballot_headers = ["ballots"] if len(ballot_items) == 1 else [i.id for i in ballot_items]
    for column in ("PPK", "PPS", "TPS", "DPT", *ballot_headers, "kg", "m3"):
        table.add_column(column, justify="right")

    def cells(row) -> list[str]:
        ballots = [f"{int(row[i.id]) // (demand.elections * i.per):,}" for i in ballot_items]
        counts = [f"{int(row[c]):,}" for c in ("ppk", "pps", "tps", "dpt")]
        return [*counts, *ballots, f"{row['kg']:,.0f}", f"{row['m3']:,.1f}"]

    for _, row in totals.iterrows():
        table.add_row(escape(f"{row['kabupaten_code']} {row['kabupaten_name']}"), *cells(row))
    table.add_section()
    table.add_row(
        "total", *cells(totals.drop(columns=["kabupaten_code", "kabupaten_name"]).sum()), style="bold"
    )
    return table


def demand_command(
    scenario_file: Annotated[Path, typer.Argument(help="scenario file, e.g. scenarios/kaltim-2024.yaml")],
    out: Annotated[
        Path | None, typer.Option("--out", help="output folder (default: out/<scenario name>)")
    ] = None,
) -> None:
    """Write demand-pps.csv, demand-ppk.csv and demand-kabupaten.csv and print totals per kabupaten."""
    console = Console(emoji=False, highlight=False)
    if out is not None:
        check_output_folder(out)
    scenario = load_scenario(scenario_file)
    inputs = load_inputs(scenario)
    folder = out if out is not None else Path("out") / scenario.name
    # whole or none; beside a plan's files when the folder holds one (the map reads TPS and DPT there)
    with output_folder(folder, keep_existing=True) as staging:
        written = [folder / path.relative_to(staging) for path in write_demand(inputs.demand, staging)]
    console.print(totals_table(inputs.demand, f"Demand of {escape(scenario.name)}"))
    for path in written:
        console.print(f"Wrote {escape(str(path))}")


def register(app: typer.Typer) -> None:
    app.command("demand")(demand_command)
