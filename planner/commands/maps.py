"""`planner map PLAN` (offline HTML route map), and the plan inputs that the map and `planner report` share."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console

from planner.errors import InputError
from planner.fileio import (
    RECORD_NAME,
    check_output_folder,
    folder_lock,
    refresh_record,
    stored_path,
)
from planner.i18n import DEFAULT_LANGUAGE, LANGUAGES
from planner.maps import Boundaries, load_boundaries, write_kabupaten_maps, write_map
from planner.plan import Plan, read_plan

DEMAND_FILES = ("demand-pps.csv", "demand-ppk.csv")  # as written by `planner demand`


class MapAudience(StrEnum):
    kpu = "kpu"
    lanal = "lanal"


AUDIENCE_VALUES = tuple(a.value for a in MapAudience)


@dataclass(frozen=True)
class PlanInputs:
    """Everything the map and the reports need besides the plan itself."""

    plan: Plan
    network: Any
    items: Any
    node_info: pd.DataFrame | None
    boundaries: Boundaries | None


def _plan_network_path(plan: Plan, plan_path: Path) -> Path:
    for candidate in (stored_path(plan_path, plan.network), Path(plan.network)):
        if candidate.exists():
            return candidate
    raise InputError(
        "the plan's network was not found",
        source=plan_path,
        problems=[f"network: {plan.network} does not exist (pass --scenario to say where the network is)"],
    )


def _read_node_info(folder: Path) -> pd.DataFrame | None:
    frames = []
    for name in DEMAND_FILES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            frame = pd.read_csv(path, dtype={"node_id": str})
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
            raise InputError(f"cannot read demand CSV ({err})", source=path) from None
        missing = [c for c in ("node_id", "tps", "dpt") if c not in frame.columns]
        if missing:
            raise InputError(f"demand CSV lacks column(s) {', '.join(missing)}", source=path)
        frames.append(frame[["node_id", "tps", "dpt"]])
    return pd.concat(frames, ignore_index=True) if frames else None


def _scenario_inputs(scenario: Path) -> tuple[Any, Any, pd.DataFrame]:
    """Network (blocked legs closed), catalog and TPS/DPT per PPS and PPK of a scenario file."""
    from planner.scenario import load_inputs, load_scenario

    inputs = load_inputs(load_scenario(scenario))
    columns = ["node_id", "tps", "dpt"]
    node_info = pd.concat([inputs.demand.pps[columns], inputs.demand.ppk[columns]], ignore_index=True)
    return inputs.network, inputs.items, node_info


def resolve_inputs(plan_path: Path, scenario: Path | None = None, demand: Path | None = None) -> PlanInputs:
    """Load the plan and what its map and reports need.

    With a scenario (given, or the one recorded in the plan if that file is still there): its network,
    catalog and demand. Otherwise the network named in plan.network, no catalog (quantities without
    weights) and TPS/DPT from the demand CSVs of `planner demand` (in `demand` or next to the plan).
    """
    from planner.network import load_network

    plan = read_plan(plan_path)
    if demand is not None and not demand.is_dir():
        raise InputError("demand folder not found", source=demand)
    if scenario is None and plan.scenario.path and stored_path(plan_path, plan.scenario.path).is_file():
        scenario = stored_path(plan_path, plan.scenario.path)
    if scenario is not None:
        if not scenario.is_file():
            raise InputError("scenario file not found", source=scenario)
        network, items, node_info = _scenario_inputs(scenario)
        if demand is not None:
            node_info = _read_node_info(demand)
    else:
        network = load_network(_plan_network_path(plan, plan_path))
        items = None
        node_info = _read_node_info(demand if demand is not None else plan_path.parent)
    boundaries = load_boundaries(network.source) if network.source is not None else None
    return PlanInputs(plan, network, items, node_info, boundaries)


PlanArgument = Annotated[Path, typer.Argument(help="plan.json written by `planner solve`")]
ScenarioOption = Annotated[
    Path | None,
    typer.Option(
        "--scenario", help="scenario file (network, catalog, demand); default: the one the plan names"
    ),
]
DemandOption = Annotated[
    Path | None,
    typer.Option(
        "--demand", help="folder with demand-pps.csv / demand-ppk.csv (TPS, DPT); default: the plan's"
    ),
]


LangOption = Annotated[
    str,
    typer.Option("--lang", help=f"language of the map's words: {', '.join(LANGUAGES)} (default Indonesian)"),
]
PerKabupatenOption = Annotated[
    bool,
    typer.Option(
        "--per-kabupaten/--no-per-kabupaten",
        help="also write one small KPU map per kabupaten, maps/map-<code>.html, next to the province map",
    ),
]


def map_command(
    plan: PlanArgument,
    audience: Annotated[
        MapAudience,
        typer.Option(
            "--audience", help="kpu: everything; lanal: sea legs, ships, ports, their stops, trip table"
        ),
    ] = MapAudience.kpu,
    out: Annotated[
        Path | None, typer.Option("--out", help="HTML file; default map-<audience>.html by the plan")
    ] = None,
    scenario: ScenarioOption = None,
    demand: DemandOption = None,
    kabupaten: Annotated[
        str | None,
        typer.Option("--kabupaten", help="kabupaten code (e.g. 64.02) whose routes are highlighted"),
    ] = None,
    lang: LangOption = DEFAULT_LANGUAGE,
    per_kabupaten: PerKabupatenOption = True,
) -> None:
    """Write the route map as one HTML file that opens offline on any phone or computer."""
    from planner.i18n import language

    language(lang)  # an unknown language fails before any work
    inputs = resolve_inputs(plan, scenario, demand)
    target = out if out is not None else plan.parent / f"map-{audience.value}.html"
    if target.is_dir():
        raise InputError(f"--out {target} is a folder: give the HTML file to write", source="--out")
    check_output_folder(target.parent)

    def draw() -> list[Path]:
        written = [
            write_map(
                inputs.plan,
                inputs.network,
                inputs.node_info,
                audience.value,
                target,
                items=inputs.items,
                boundaries=inputs.boundaries,
                lang=lang,
                highlight=kabupaten,
            )
        ]
        if per_kabupaten and audience == MapAudience.kpu:
            written += write_kabupaten_maps(
                inputs.plan,
                inputs.network,
                inputs.node_info,
                target.parent / "maps",
                items=inputs.items,
                boundaries=inputs.boundaries,
                lang=lang,
            )
        return written

    if (target.parent / RECORD_NAME).is_file():
        with folder_lock(target.parent):  # maps added to a plan folder are listed in its record
            written = draw()
            refresh_record(target.parent, written)
    else:
        written = draw()
    console = Console()
    for path in written:
        size_mb = path.stat().st_size / 1e6
        console.print(f"Wrote {path} ({size_mb:.1f} MB) for {audience.value}.", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add `map` to the `planner` app (`report` is in planner/commands/report.py)."""
    app.command("map")(map_command)
