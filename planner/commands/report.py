"""`planner report PLAN`: manifests, kabupaten summaries, schedule charts, and the surat jalan and BAST documents."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from planner.commands.maps import (
    AUDIENCE_VALUES,
    DemandOption,
    PlanArgument,
    PlanInputs,
    ScenarioOption,
    resolve_inputs,
)
from planner.documents import DOCUMENTS_DIR, kabupaten_names, write_documents
from planner.fileio import check_output_folder, output_folder
from planner.i18n import DEFAULT_LANGUAGE, LANGUAGES, language
from planner.maps import write_kabupaten_maps, write_map
from planner.report import write_reports


def report_command(
    plan: PlanArgument,
    out: Annotated[Path | None, typer.Option("--out", help="folder; default: the plan's folder")] = None,
    scenario: ScenarioOption = None,
    demand: DemandOption = None,
    maps: Annotated[
        bool,
        typer.Option(
            "--maps/--no-maps", help="also write map-kpu.html, map-lanal.html and maps/map-<code>.html"
        ),
    ] = False,
    documents: Annotated[
        bool,
        typer.Option(
            "--documents/--no-documents",
            help=f"also write the surat jalan and BAST of every trip (PDF, XLSX) under {DOCUMENTS_DIR}/",
        ),
    ] = True,
    kabupaten: Annotated[
        str | None,
        typer.Option("--kabupaten", help="documents of this kabupaten/kota only, e.g. 64.02 (default: all)"),
    ] = None,
    lang: Annotated[
        str,
        typer.Option("--lang", help=f"language of the documents and maps: {', '.join(LANGUAGES)}"),
    ] = DEFAULT_LANGUAGE,
) -> None:
    """Re-write the manifests (CSV, XLSX per vehicle), kabupaten summaries and schedule charts of a plan, and
    the documents officers sign: a surat jalan per trip with a BAST per hand-over (A4 PDF and XLSX)."""
    language(lang)  # an unknown language is a user error before anything is read or written
    if out is not None:
        check_output_folder(out)
    inputs = resolve_inputs(plan, scenario, demand)
    out_dir = out if out is not None else plan.parent
    console = Console()
    written: list[Path] = []
    # whole or none: everything goes into a staging copy of the folder, moved into place at the end
    with output_folder(out_dir, keep_existing=True) as staging:
        if documents:
            with console.status("Writing surat jalan and BAST documents..."):
                names = kabupaten_names(inputs.boundaries)
                written += write_documents(
                    inputs.plan,
                    inputs.network,
                    inputs.items,
                    inputs.node_info,
                    staging,
                    lang,
                    kabupaten,
                    names,
                )
        with console.status("Writing manifests, summaries and schedule charts..."):
            written += write_reports(inputs.plan, inputs.network, inputs.items, inputs.node_info, staging)
            if maps:
                written += _maps(inputs, staging, lang)
    written = [out_dir / path.relative_to(staging) for path in written]
    _print_summary(console, plan, written)
    if inputs.items is None:
        console.print(
            "No catalog found (pass --scenario): manifests show quantities without weight and volume."
        )
    if inputs.node_info is None:
        console.print("No demand CSVs found (pass --demand): TPS and DPT are left out.")


def _maps(inputs: PlanInputs, folder: Path, lang: str) -> list[Path]:
    """The KPU and Lanal maps and one KPU map per kabupaten (maps/map-<code>.html), in `lang`."""
    written = [
        write_map(
            inputs.plan,
            inputs.network,
            inputs.node_info,
            audience,
            folder / f"map-{audience}.html",
            items=inputs.items,
            boundaries=inputs.boundaries,
            lang=lang,
        )
        for audience in AUDIENCE_VALUES
    ]
    return written + write_kabupaten_maps(
        inputs.plan,
        inputs.network,
        inputs.node_info,
        folder / "maps",
        items=inputs.items,
        boundaries=inputs.boundaries,
        lang=lang,
    )


def _print_summary(console: Console, plan: Path, written: list[Path]) -> None:
    table = Table(title=f"Reports for {plan}")
    table.add_column("what")
    table.add_column("files", justify="right")
    table.add_column("where")
    groups: dict[tuple[str, str], int] = {}
    for path in written:
        key = (_describe(path), str(path.parent))
        groups[key] = groups.get(key, 0) + 1
    for (what, where), count in groups.items():
        table.add_row(what, str(count), where)
    console.print(table)


def _describe(path: Path) -> str:
    name = path.name
    if path.parent.name == "manifests":
        return "manifest (surat jalan) " + path.suffix.lstrip(".").upper()
    if name.startswith("surat-jalan-"):
        return "surat jalan + BAST " + path.suffix.lstrip(".").upper()
    if name.endswith("-summary.xlsx"):
        return "kabupaten summary XLSX"
    if name.endswith(".png"):
        return "schedule chart PNG"
    if name == "index.html" and DOCUMENTS_DIR in path.parts:
        return "documents index HTML"
    if name.endswith(".html"):
        return "map HTML"
    return name


def register(app: typer.Typer) -> None:
    """Add `report` to the `planner` app."""
    app.command("report")(report_command)
