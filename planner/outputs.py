"""Every file of a plan, written whole or not at all: plan.json, CSV tables, manifests, documents and maps.

The renderers (planner.report, planner.maps) are called from here only, at the edge of the pipeline. A run
writes into a staging folder and records its completion explicitly: outputs.json, listing every file with its
sha256, is written last and the folder then moved onto the output folder (planner.fileio.output_folder). A
folder without a complete record is an interrupted run (planner.batch solves it again).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from pathlib import Path

import pandas as pd

from planner.fileio import RECORD_NAME, output_folder, write_csv
from planner.maps import load_boundaries, write_map
from planner.plan import Plan, legs_frame, stops_frame, write_plan
from planner.report import write_reports
from planner.scenario import ScenarioInputs


def node_info(inputs: ScenarioInputs) -> pd.DataFrame:
    """TPS and DPT per PPS and PPK node, for popups and manifests."""
    columns = ["node_id", "tps", "dpt"]
    return pd.concat([inputs.demand.pps[columns], inputs.demand.ppk[columns]], ignore_index=True)


def write_outputs(
    plan: Plan,
    inputs: ScenarioInputs,
    out_dir: str | Path,
    changed: Collection[tuple[str, int]] = (),
    extra: Callable[[Path], list[Path]] | None = None,
) -> list[Path]:
    """Write every output of a plan into `out_dir`, whole or not at all; return the paths written.

    plan.json, stops.csv, legs.csv, unserved.csv, manifests, summaries, schedule charts and the maps
    (and what `extra(folder)` writes, e.g. a re-plan's diff.json) go into a staging folder; the
    completion record outputs.json (every file with its sha256) is written last and the folder then
    moved onto `out_dir` (planner.fileio.output_folder). A failure leaves `out_dir` as it was.
    `changed`: (vehicle, trip) of re-planned trips, highlighted on the maps.
    """
    out_dir = Path(out_dir)
    with output_folder(out_dir) as staging:
        written = _write_plan_files(plan_for_folder(plan, out_dir), inputs, staging, changed)
        if extra is not None:
            written += extra(staging)
    return [out_dir / path.relative_to(staging) for path in written] + [out_dir / RECORD_NAME]


def _relative_to(path: str, folder: Path) -> str:
    """`path` as seen from `folder` ('/'-separated), so plan.json has the same bytes wherever the run was
    started and however the scenario was named (relative or absolute)."""
    try:
        return Path(os.path.relpath(Path(path).resolve(), folder.resolve())).as_posix()
    except ValueError:  # another drive (Windows): keep it absolute
        return Path(path).resolve().as_posix()


def plan_for_folder(plan: Plan, out_dir: Path) -> Plan:
    """The plan as written into `out_dir`: its scenario, network and previous-plan paths relative to that
    folder."""
    scenario = plan.scenario
    if scenario.path:
        scenario = scenario.model_copy(update={"path": _relative_to(scenario.path, out_dir)})
    update = {"scenario": scenario, "network": _relative_to(plan.network, out_dir)}
    if plan.replan is not None and plan.replan.based_on:  # the plan it re-plans, seen from its folder too
        update["replan"] = plan.replan.model_copy(
            update={"based_on": _relative_to(plan.replan.based_on, out_dir)}
        )
    return plan.model_copy(update=update)


def _write_plan_files(
    plan: Plan, inputs: ScenarioInputs, folder: Path, changed: Collection[tuple[str, int]]
) -> list[Path]:
    unserved = pd.DataFrame(
        [u.model_dump() for u in plan.unserved], columns=["node_id", "kabupaten_code", "reason", "detail"]
    )
    written = [
        write_plan(plan, folder / "plan.json"),
        write_csv(stops_frame(plan), folder / "stops.csv"),
        write_csv(legs_frame(plan), folder / "legs.csv"),
        write_csv(unserved, folder / "unserved.csv"),
    ]
    info = node_info(inputs)
    written += write_reports(plan, inputs.network, inputs.items, info, folder)
    boundaries = load_boundaries(inputs.network.source)
    for audience in ("kpu", "lanal"):
        written.append(
            write_map(
                plan,
                inputs.network,
                info,
                audience,
                folder / f"map-{audience}.html",
                items=inputs.items,
                boundaries=boundaries,
                changed=changed,
            )
        )
    return written
