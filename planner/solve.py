"""Solve a scenario: one dispatch per kabupaten, in parallel processes, assembled into one plan with KPIs."""

from __future__ import annotations

import multiprocessing
import os
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from planner.dispatch import KabupatenResult, KabupatenTask, Trip, add_goods, plan_kabupaten
from planner.fileio import RECORD_NAME, output_folder, write_csv
from planner.kpis import plan_kpis
from planner.maps import load_boundaries, write_map
from planner.plan import (
    Calendar,
    Plan,
    Route,
    ScenarioRef,
    Stop,
    Unserved,
    file_hash,
    legs_frame,
    stops_frame,
    write_plan,
)
from planner.report import write_reports
from planner.scenario import ScenarioInputs
from planner.search import SearchSettings
from planner.validate import Expectations
from planner.validate import expectations as expectations  # re-exported: planner.solve.expectations

ProgressCallback = Callable[[str, str], None]  # (kabupaten code, "started" | "done")


def search_settings(
    inputs: ScenarioInputs, time_limit_s: float | None = None, deterministic: bool | None = None
) -> SearchSettings:
    """The scenario's solver settings; `time_limit_s` and `deterministic` override them when given."""
    solver = inputs.scenario.solver
    options = dict(solver.options)
    if solver.solution_limit is not None:
        options["solution_limit"] = solver.solution_limit
    return SearchSettings(
        time_limit_s=time_limit_s or solver.time_limit_s,
        seed=solver.seed,
        deterministic=solver.deterministic if deterministic is None else deterministic,
        **options,
    )


def kabupaten_tasks(
    inputs: ScenarioInputs, expect: Expectations, settings: SearchSettings
) -> list[KabupatenTask]:
    """One task per kabupaten. The time limit is per kabupaten on average: bigger ones get more of it."""
    tasks = []
    start = expect.start
    nodes = [*expect.pps_goods, *expect.ppk_own]
    size = {c: sum(1 for p in nodes if p.split(":")[1][:5] == c) for c in inputs.kabupaten}
    mean_size = sum(size.values()) / max(len(size), 1)
    for code in inputs.kabupaten:
        share = min(2.5, max(0.3, size[code] / mean_size)) if mean_size else 1.0
        fleet = [expect.vehicles[v.vehicle_id] for v in inputs.fleet.vehicles if v.kabupaten_code == code]
        pps = {p: g for p, g in expect.pps_goods.items() if p.split(":")[1][:5] == code}
        ppk_own = {p: g for p, g in expect.ppk_own.items() if p.split(":")[1][:5] == code}
        members: dict[str, list[str]] = defaultdict(list)
        for p in pps:
            members[expect.pps_ppk[p]].append(p)
        ppk_goods = {p: add_goods(own, *(pps[x] for x in members[p])) for p, own in ppk_own.items()}
        tasks.append(
            KabupatenTask(
                kabupaten_code=code,
                network=inputs.network,
                vehicles=tuple(sorted(fleet, key=lambda v: v.vehicle_id)),
                items=tuple(expect.units.values()),
                ppk_goods=ppk_goods,
                ppk_own=ppk_own,
                pps_goods=pps,
                pps_ppk={p: expect.pps_ppk[p] for p in pps},
                start_minute_of_day=start.hour * 60 + start.minute,
                ppk_deadline=expect.minute(expect.ppk_deadline),
                pps_deadline=expect.minute(expect.pps_deadline),
                settings=replace(settings, time_limit_s=settings.time_limit_s * share),
                pps_kits={p: expect.pps_kits[p] for p in pps if p in expect.pps_kits},
            )
        )
    return tasks


def run_tasks(
    tasks: list[KabupatenTask], workers: int, progress: ProgressCallback | None = None
) -> list[KabupatenResult]:
    """Solve every kabupaten; in `workers` processes when more than one. Results come back in task order."""
    notify = progress or (lambda code, state: None)
    if workers <= 1 or len(tasks) <= 1:
        results = []
        for task in tasks:
            notify(task.kabupaten_code, "started")
            results.append(plan_kabupaten(task))
            notify(task.kabupaten_code, "done")
        return results
    by_code: dict[str, KabupatenResult] = {}
    # biggest kabupaten first, so the pool does not end on one long solve
    ordered = sorted(tasks, key=lambda t: -len(t.pps_goods))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context) as pool:
        futures = {pool.submit(plan_kabupaten, task): task.kabupaten_code for task in ordered}
        for code in futures.values():
            notify(code, "started")
        for future in as_completed(futures):
            result = future.result()
            by_code[result.kabupaten_code] = result
            notify(result.kabupaten_code, "done")
    return [by_code[t.kabupaten_code] for t in tasks]


def trip_route(trip: Trip, kabupaten_code: str, start: datetime) -> Route:
    """A dispatched trip (minutes after the plan start) as a plan route (local datetimes)."""

    def at(minute: int) -> datetime:
        return start + timedelta(minutes=int(minute))

    stops = [
        Stop(
            node_id=v.node_id,
            arrival=at(v.arrival),
            departure=at(v.departure),
            deliver=dict(v.deliver),
            load=dict(v.load),
            tps_kits=list(v.tps_kits),
        )
        for v in trip.visits
    ]
    return Route(
        vehicle_id=trip.vehicle_id,
        vehicle_type=trip.type_id,
        kabupaten_code=kabupaten_code,
        base=trip.base,
        tier=trip.tier,
        trip=trip.trip,
        stops=stops,
        legs=list(trip.legs),
    )


def assemble_plan(
    inputs: ScenarioInputs, expect: Expectations, results: Iterable[KabupatenResult], network_path: Path
) -> Plan:
    scenario = inputs.scenario
    results = list(results)
    routes, unserved = [], []
    for result in results:
        routes += [trip_route(trip, result.kabupaten_code, expect.start) for trip in result.trips]
        unserved += [
            Unserved(
                node_id=m.node_id, kabupaten_code=result.kabupaten_code, reason=m.reason, detail=m.detail
            )
            for m in result.unserved
        ]
    plan = Plan(
        scenario=ScenarioRef(
            name=scenario.name,
            hash=file_hash(scenario.source) if scenario.source else "",
            path=str(scenario.source) if scenario.source else None,
        ),
        network=str(network_path),
        calendar=Calendar(
            timezone=scenario.calendar.timezone,
            start=expect.start,
            ppk_deadline=expect.ppk_deadline,
            pps_deadline=expect.pps_deadline,
        ),
        blocked_legs=sorted(scenario.blocked_legs),
        routes=routes,
        unserved=sorted(unserved, key=lambda u: u.node_id),
        failed_kabupaten=sorted(result.kabupaten_code for result in results if result.failure),
    )
    return plan.model_copy(update={"kpis": plan_kpis(plan, expect, inputs.kabupaten)})


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
