"""`planner network build|check`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from planner.network import (
    build_network,
    load_network,
    network_dir,
    write_network,
)
from planner.network_check import check_network, how_reached, longest_access
from planner.nodes import MODES

network_app = typer.Typer(
    help="Build and check the road / river / sea network of a region.", no_args_is_help=True
)


@network_app.command("build")
def build(folder: Annotated[Path, typer.Argument(help="network folder, e.g. networks/kaltim")]) -> None:
    """Build network.gpkg (layers nodes and legs) from the folder's network.yaml, sources and overrides."""
    console = Console()
    with console.status("Building the network from the boundary data..."):
        network = build_network(folder)
        target = write_network(network, network_dir(folder) / "network.gpkg")
    kinds = network.nodes["kind"].value_counts().to_dict()
    modes = network.legs["mode"].value_counts().to_dict()
    console.print(
        f"Wrote [bold]{target}[/]: {len(network.nodes)} nodes "
        f"({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))}), {len(network.legs)} legs "
        f"({', '.join(f'{modes.get(m, 0)} {m}' for m in MODES)})."
    )


@network_app.command("check")
def check(
    folder: Annotated[Path, typer.Argument(help="network folder or its network.gpkg")],
    block: Annotated[
        list[str] | None, typer.Option("--block", help="leg id to treat as blocked (repeatable)")
    ] = None,
) -> None:
    """Count nodes and legs, and fail (exit 1) naming every PPS its kabupaten warehouse cannot reach."""
    console = Console()
    network = load_network(folder)
    if block:
        network = network.blocked(block)
    report = check_network(network)
    table = Table(title=f"Network {network.source}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("km (open)", justify="right")
    for kind, count in report.nodes_per_kind.items():
        table.add_row(f"nodes: {kind}", str(count), "")
    for mode in MODES:
        table.add_row(f"legs: {mode}", str(report.legs_per_mode[mode]), f"{report.km_per_mode[mode]:,.1f}")
    table.add_row("legs blocked", str(report.blocked_legs), "")
    console.print(table)
    _print_ground(console, network)
    if report.unreachable:
        console.print(
            f"[bold red]{len(report.unreachable)} PPS cannot be reached from their warehouse and back:[/]"
        )
        for node_id, name, warehouse, why in report.unreachable:
            console.print(f"  {node_id} ({name}) from {warehouse}: {why}", markup=False, highlight=False)
        raise typer.Exit(1)
    console.print("Every PPS can be reached from its kabupaten warehouse and back over open legs.")


def _print_ground(console: Console, network) -> None:
    """Road classes, the desa that lost a road to water (and how they are reached now), the longest access legs."""
    legs = network.legs
    road = legs[legs["mode"] == "road"]
    classes = road["road_class"].replace("", "(none)").value_counts().sort_index()
    console.print(
        "Road legs by class: " + ", ".join(f"{k} {v}" for k, v in classes.items()),
        markup=False,
        highlight=False,
    )
    lost = network.nodes[(network.nodes["kind"] == "pps") & (network.nodes["lost_roads"] > 0)]
    if len(lost):
        reach = how_reached(network, lost.index)
        counts: dict[str, int] = {}
        for how in reach.values():
            counts[how] = counts.get(how, 0) + 1
        console.print(f"{len(lost)} PPS lost a road leg to water (or to access.csv); reached now by:")
        for how, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            console.print(f"  {count:4d}  {how}", markup=False, highlight=False)
        for node_id, row in lost.iterrows():
            console.print(
                f"  {node_id} ({row['name']}): {row['lost_roads']} road leg(s) not built; {reach[node_id]}",
                markup=False,
                highlight=False,
            )
    console.print("Longest access legs (node far from the desa site it serves):")
    for leg, km in longest_access(network):
        console.print(f"  {km:7.1f} km  {leg}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(network_app, name="network")
