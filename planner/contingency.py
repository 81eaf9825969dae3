"""Contingency (N-1) analysis: block each leg in turn, plan again, rank the legs by what their loss costs.

A case is the scenario with one more blocked leg, planned from the start (a what-if before distribution).
The baseline plan (the scenario as it is) is solved first with the same settings. A kabupaten whose baseline
routes do not use the leg keeps its baseline plan: that plan is still feasible without the leg, so its loss
costs that kabupaten nothing (re-solving it would only add search noise). Only the kabupaten whose routes use
the leg are solved again; a leg no route uses has no impact and needs no solve.

Cases always run in deterministic mode (iteration and solution budgets, the time limit only as a safety net),
so a local pool and a Dask cluster give identical plans. Each finished case is kept as a small JSON file in
<out>/cases/, keyed by a hash of the input files, the leg and the settings; a re-run loads it instead of
solving again. Results are put in leg order before ranking, never in order of completion.

Impact of a leg, against the baseline: PPS newly unserved (by reason), PPS served more than an hour later
than in the baseline or after the deadline, extra km (total and per mode), extra vehicle-hours (trip
durations, base to base, nights included) and extra travel hours. Legs are ranked by (newly unserved PPS,
late PPS, extra vehicle-hours, extra km), largest first, then by leg id.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import shapely

import planner
from planner.batch import Backend, NoProgress, Progress, run_jobs
from planner.dispatch import KabupatenResult, KabupatenTask, plan_kabupaten
from planner.errors import InputError
from planner.fileio import write_csv, write_json, write_text
from planner.i18n import language
from planner.maps import (
    LEG_STYLES,
    POINT_STYLES,
    MapContent,
    MapLayer,
    boundary_layers,
    load_boundaries,
    map_feature,
    render_map_html,
)
from planner.network import Network
from planner.scenario import ScenarioInputs, display_path, load_inputs, load_scenario
from planner.search import SearchSettings
from planner.solve import expectations, kabupaten_tasks, search_settings

CASE_FORMAT = "kpu-contingency-case"
CASE_VERSION = 1
DEFAULT_TIME_LIMIT_S = 10.0  # per kabupaten; a safety net only, the deterministic budgets set the effort
LATE_MARGIN_MIN = 60  # a PPS served more than this much later than in the baseline counts as late
MODES = ("road", "river", "sea", "access")
UNSERVED_REASONS = ("unreachable", "too_late", "capacity", "no_vehicle")
LEG_CHOICES = ("used", "all")
IMPACT_COLUMNS = [
    "rank",
    "leg_id",
    "mode",
    "from_node",
    "from_name",
    "to_node",
    "to_name",
    "length_km",
    "baseline_trips",
    "replanned",
    "newly_unserved_pps",
    *UNSERVED_REASONS,
    "late_pps",
    "extra_vehicle_hours",
    "extra_travel_hours",
    "extra_km",
    *(f"extra_km_{m}" for m in MODES),
    "unserved_pps",
    "late_pps_ids",
]


# ---------------------------------------------------------------- outcome of one kabupaten plan


def kabupaten_outcome(result: KabupatenResult, task: KabupatenTask, with_legs: bool = False) -> dict:
    """What the impact is measured on, as JSON-ready data: km per mode, hours, PPS arrivals, unserved."""
    legs = task.network.legs
    mode_of, km_of = legs["mode"].to_dict(), legs["length_km"].to_dict()
    kinds = {v.vehicle_id: v.kind for v in task.vehicles}
    km = dict.fromkeys(MODES, 0.0)
    travel_hours = 0.0
    vehicle_minutes = 0
    arrival: dict[str, int] = {}
    trips_on: dict[str, int] = defaultdict(int)
    for trip in result.trips:
        speeds = kinds[trip.vehicle_id].speeds
        for leg_id in trip.legs:
            mode, length = mode_of[leg_id], float(km_of[leg_id])
            km[mode] += length
            speed = speeds.speed_on(legs.loc[leg_id])
            travel_hours += length / speed if speed else 0.0
        vehicle_minutes += trip.visits[-1].arrival - trip.visits[0].arrival
        for visit in trip.visits:
            if visit.deliver and visit.node_id.startswith("pps:"):
                arrival[visit.node_id] = max(arrival.get(visit.node_id, 0), visit.arrival)
        for leg_id in set(trip.legs):
            trips_on[leg_id] += 1
    outcome = {
        "km_by_mode": {m: round(v, 3) for m, v in km.items()},
        "travel_hours": round(travel_hours, 3),
        "vehicle_hours": round(vehicle_minutes / 60, 3),
        "trips": len(result.trips),
        "vehicles": len({t.vehicle_id for t in result.trips}),
        "pps_arrival": dict(sorted(arrival.items())),
        "unserved": {m.node_id: m.reason for m in result.unserved},
    }
    if with_legs:
        outcome["trips_on_leg"] = dict(sorted(trips_on.items()))
    return outcome


# ---------------------------------------------------------------- what the workers run


@dataclass(frozen=True)
class ContingencyContext:
    """Sent once to every worker: the baseline task of each kabupaten (all sharing one network)."""

    tasks: Mapping[str, KabupatenTask]

    @property
    def network(self) -> Network:
        return next(iter(self.tasks.values())).network


@dataclass(frozen=True)
class Case:
    leg_id: str
    key: str
    kabupaten: tuple[str, ...]  # the kabupaten to plan again: those whose baseline routes use the leg


def run_baseline(context: ContingencyContext, code: str) -> dict:
    """Plan one kabupaten as the scenario stands (job of the baseline stage)."""
    started = time.perf_counter()
    task = context.tasks[code]
    outcome = kabupaten_outcome(plan_kabupaten(task), task, with_legs=True)
    return {"kabupaten_code": code, "outcome": outcome, "wall_s": round(time.perf_counter() - started, 2)}


def run_case(context: ContingencyContext, case: Case) -> dict:
    """Plan the kabupaten of a case again with its leg blocked; the record kept in <out>/cases/."""
    started = time.perf_counter()
    network = context.network.blocked([case.leg_id])
    outcomes = {}
    for code in case.kabupaten:
        task = replace(context.tasks[code], network=network)
        outcomes[code] = kabupaten_outcome(plan_kabupaten(task), task)
    return {
        "format": CASE_FORMAT,
        "version": CASE_VERSION,
        "leg_id": case.leg_id,
        "key": case.key,
        "replanned": list(case.kabupaten),
        "kabupaten": outcomes,
        "wall_s": round(time.perf_counter() - started, 2),
    }


# ---------------------------------------------------------------- impact and ranking


def leg_impact(
    leg_id: str, baseline: Mapping[str, dict], case: Mapping[str, Any] | None, pps_deadline: int
) -> dict:
    """The impact columns of one leg. `case` is None for a leg no baseline route uses (no impact)."""
    replanned = list(case["replanned"]) if case else []
    newly = dict.fromkeys(UNSERVED_REASONS, 0)
    unserved_ids: list[str] = []
    late_ids: list[str] = []
    extra_km = dict.fromkeys(MODES, 0.0)
    extra_vehicle_hours = extra_travel_hours = 0.0
    for code in replanned:
        before, after = baseline[code], case["kabupaten"][code]
        for node, reason in sorted(after["unserved"].items()):
            if node.startswith("pps:") and node not in before["unserved"]:
                newly[reason] += 1
                unserved_ids.append(node)
        for node, arrival in sorted(after["pps_arrival"].items()):
            was = before["pps_arrival"].get(node)
            if arrival > pps_deadline or (was is not None and arrival > was + LATE_MARGIN_MIN):
                late_ids.append(node)
        for mode in MODES:
            extra_km[mode] += after["km_by_mode"][mode] - before["km_by_mode"][mode]
        extra_vehicle_hours += after["vehicle_hours"] - before["vehicle_hours"]
        extra_travel_hours += after["travel_hours"] - before["travel_hours"]

    def tidy(value: float, digits: int) -> float:
        return round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0

    return {
        "leg_id": leg_id,
        "baseline_trips": sum(b.get("trips_on_leg", {}).get(leg_id, 0) for b in baseline.values()),
        "replanned": " ".join(replanned),
        "newly_unserved_pps": len(unserved_ids),
        **newly,
        "late_pps": len(late_ids),
        "extra_vehicle_hours": tidy(extra_vehicle_hours, 2),
        "extra_travel_hours": tidy(extra_travel_hours, 2),
        "extra_km": tidy(sum(extra_km.values()), 1),
        **{f"extra_km_{m}": tidy(v, 1) for m, v in extra_km.items()},
        "unserved_pps": " ".join(unserved_ids),
        "late_pps_ids": " ".join(late_ids),
    }


def rank_key(row: Mapping[str, Any]) -> tuple:
    return (
        -row["newly_unserved_pps"],
        -row["late_pps"],
        -row["extra_vehicle_hours"],
        -row["extra_km"],
        row["leg_id"],
    )


def ranked(rows: Iterable[dict]) -> list[dict]:
    out = sorted(rows, key=rank_key)
    return [{"rank": i, **row} for i, row in enumerate(out, start=1)]


# ---------------------------------------------------------------- choosing the legs


def legs_in_kabupaten(network: Network, kabupaten: Iterable[str]) -> list[str]:
    """Every open leg (access links excepted) with an end in one of the kabupaten, by leg id."""
    codes = set(kabupaten)
    legs, nodes = network.legs, network.nodes
    kab = nodes["kabupaten_code"].astype(str)
    inside = legs["from_node"].map(kab).isin(codes) | legs["to_node"].map(kab).isin(codes)
    chosen = legs[inside & (legs["mode"] != "access") & (legs["status"] == "open")]
    return sorted(chosen.index)


def read_leg_file(path: Path, network: Network) -> list[str]:
    """Leg ids from a text file (one a line, '#' comments) or a CSV with a `leg_id` column, in file order."""
    if not path.is_file():
        raise InputError("leg file not found", source=display_path(path))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(
            f"cannot read the leg file ({type(err).__name__})", source=display_path(path)
        ) from None
    lines = text.splitlines()
    header = next((line for line in lines if line.strip() and not line.lstrip().startswith("#")), "")
    entries: list[tuple[int, str]] = []
    if "leg_id" in [c.strip() for c in header.split(",")]:
        start = lines.index(header)
        reader = csv.DictReader(io.StringIO("\n".join(lines[start:])))
        for number, row in enumerate(reader, start=start + 2):
            value = (row.get("leg_id") or "").strip()
            if value:
                entries.append((number, value))
    else:
        for number, line in enumerate(lines, start=1):
            value = line.split(",")[0].strip()
            if value and not value.startswith("#"):
                entries.append((number, value))
    problems = [
        f"line {number}: {value!r} is not a leg of the network"
        for number, value in entries
        if value not in network.legs.index
    ]
    if problems:
        count = len(problems)
        raise InputError(
            f"{count} unknown leg id{'s' if count != 1 else ''}", source=display_path(path), problems=problems
        )
    if not entries:
        raise InputError("the leg file lists no leg ids", source=display_path(path))
    return list(dict.fromkeys(value for _, value in entries))


def order_by_traffic(leg_ids: Iterable[str], baseline: Mapping[str, dict]) -> list[str]:
    """Most-travelled legs of the baseline first (so --limit looks at the busiest), then by leg id."""
    trips: dict[str, int] = defaultdict(int)
    for outcome in baseline.values():
        for leg_id, count in outcome.get("trips_on_leg", {}).items():
            trips[leg_id] += count
    return sorted(set(leg_ids), key=lambda leg: (-trips[leg], leg))


def choose_legs(
    choice: str, network: Network, kabupaten: Sequence[str], baseline: Mapping[str, dict]
) -> list[str]:
    """The legs to test for `--legs used|all|FILE`, before any --limit."""
    if choice == "used":
        used = {leg for b in baseline.values() for leg in b.get("trips_on_leg", {})}
        return order_by_traffic((leg for leg in used if network.legs.at[leg, "mode"] != "access"), baseline)
    if choice == "all":
        return order_by_traffic(legs_in_kabupaten(network, kabupaten), baseline)
    return read_leg_file(Path(choice), network)


# ---------------------------------------------------------------- keys and case files


def inputs_fingerprint(inputs: ScenarioInputs) -> str:
    """sha256 over the scenario file and every file it reads (network, catalog, fleet, demand)."""
    scenario = inputs.scenario
    paths = scenario.resolved_paths()
    files = [scenario.source, inputs.network.source, paths.catalog, paths.fleet]
    files += [paths.figures, paths.kecamatan_dpt, paths.voters_csv]
    digest = hashlib.sha256()
    for path in files:
        if path is not None and Path(path).is_file():
            digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
        else:
            digest.update(b"-")
    return digest.hexdigest()


def case_key(fingerprint: str, settings: SearchSettings, leg_id: str | None) -> str:
    """What a stored case must match to be reused: inputs, settings, leg and the planner version."""
    payload = {
        "format": CASE_FORMAT,
        "version": CASE_VERSION,
        "planner": getattr(planner, "__version__", ""),
        "inputs": fingerprint,
        "settings": asdict(settings),
        "leg": leg_id,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def case_path(cases_dir: Path, leg_id: str) -> Path:
    return cases_dir / (re.sub(r"[^A-Za-z0-9_.-]", "_", leg_id) + ".json")


def load_record(path: Path, key: str) -> dict | None:
    """A stored record if it exists and was made from the same inputs and settings; otherwise None."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != CASE_FORMAT or record.get("key") != key:
        return None
    return record


# ---------------------------------------------------------------- the whole analysis


@dataclass(frozen=True)
class ContingencyOptions:
    legs: str = "used"  # "used", "all" or a file of leg ids
    limit: int | None = None  # only the first N legs
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    backend: Backend = Backend()


@dataclass(frozen=True)
class ContingencyResult:
    rows: list[dict]  # ranked, IMPACT_COLUMNS
    baseline: dict[str, dict]  # kabupaten code -> outcome
    tested: int
    replanned: int  # cases solved in this run
    reused: int  # cases loaded from an earlier run
    unused: int  # legs no baseline route uses: no impact, nothing to solve
    left_out_blocked: list[str]  # legs of a leg file already blocked in the scenario
    baseline_reused: bool
    wall_s: float
    case_wall_s: list[float] = field(default_factory=list)  # solving time of each case solved in this run


def contingency_context(
    inputs: ScenarioInputs, time_limit_s: float
) -> tuple[ContingencyContext, SearchSettings]:
    # float: a limit of 30 and one of 30.0 must give the same case keys
    settings = search_settings(inputs, float(time_limit_s), deterministic=True)
    tasks = kabupaten_tasks(inputs, expectations(inputs), settings)
    return ContingencyContext({t.kabupaten_code: t for t in tasks}), settings


def baseline_outcomes(
    context: ContingencyContext, key: str, path: Path, backend: Backend, progress: Progress
) -> tuple[dict[str, dict], bool]:
    """The baseline plan's outcome per kabupaten: stored from an earlier run, or solved now."""
    stored = load_record(path, key)
    if stored is not None and set(stored["kabupaten"]) == set(context.tasks):
        return stored["kabupaten"], True
    codes = sorted(context.tasks, key=lambda c: (-len(context.tasks[c].pps_goods), c))
    progress.start("baseline", len(codes))
    outcomes: dict[str, dict] = {}
    for _, record in run_jobs(run_baseline, context, codes, backend):
        outcomes[record["kabupaten_code"]] = record["outcome"]
        progress.advance("baseline", record["kabupaten_code"])
    outcomes = dict(sorted(outcomes.items()))
    write_json(
        path,
        {"format": CASE_FORMAT, "version": CASE_VERSION, "key": key, "leg_id": None, "kabupaten": outcomes},
    )
    return outcomes, False


def run_contingency(
    scenario_path: Path, out_dir: Path, options: ContingencyOptions, progress: Progress | None = None
) -> ContingencyResult:
    """Test every chosen leg, write <out>/contingency.csv and <out>/contingency-map.html."""
    started = time.perf_counter()
    progress = progress or NoProgress()
    if options.legs not in LEG_CHOICES and not Path(options.legs).is_file():
        raise InputError(
            f"--legs must be `used`, `all` or a file of leg ids; file not found: {display_path(Path(options.legs))}"
        )
    if options.limit is not None and options.limit < 1:
        raise InputError("--limit must be at least 1")
    inputs = load_inputs(load_scenario(scenario_path))
    network = inputs.network
    if options.legs not in LEG_CHOICES:
        read_leg_file(Path(options.legs), network)  # a bad file fails before any solving
    context, settings = contingency_context(inputs, options.time_limit_s)
    fingerprint = inputs_fingerprint(inputs)
    cases_dir = out_dir / "cases"
    baseline, baseline_reused = baseline_outcomes(
        context, case_key(fingerprint, settings, None), cases_dir / "baseline.json", options.backend, progress
    )

    chosen = choose_legs(options.legs, network, inputs.kabupaten, baseline)
    blocked = set(network.legs.index[network.legs["status"] == "blocked"])
    left_out = [leg for leg in chosen if leg in blocked]
    chosen = [leg for leg in chosen if leg not in blocked][: options.limit]

    users: dict[str, list[str]] = defaultdict(list)
    for code, outcome in baseline.items():
        for leg_id in outcome["trips_on_leg"]:
            users[leg_id].append(code)
    records: dict[str, dict | None] = {}
    to_solve: list[Case] = []
    reused = 0
    for leg_id in chosen:
        if not users.get(leg_id):
            records[leg_id] = None
            continue
        case = Case(leg_id, case_key(fingerprint, settings, leg_id), tuple(sorted(users[leg_id])))
        stored = load_record(case_path(cases_dir, leg_id), case.key)
        if stored is not None:
            records[leg_id] = stored
            reused += 1
        else:
            to_solve.append(case)

    progress.start("cases", len(to_solve))
    case_wall = []
    for _, record in run_jobs(run_case, context, to_solve, options.backend):
        write_json(case_path(cases_dir, record["leg_id"]), record)
        records[record["leg_id"]] = record
        case_wall.append(record["wall_s"])
        progress.advance("cases", record["leg_id"])

    pps_deadline = next(iter(context.tasks.values())).pps_deadline
    rows = ranked(leg_impact(leg, baseline, records[leg], pps_deadline) for leg in sorted(records))
    rows = [{**leg_facts(network, row["leg_id"]), **row} for row in rows]
    write_impact_csv(rows, out_dir / "contingency.csv")
    write_contingency_map(rows, network, inputs, out_dir / "contingency-map.html")
    return ContingencyResult(
        rows=rows,
        baseline=baseline,
        tested=len(chosen),
        replanned=len(to_solve),
        reused=reused,
        unused=sum(1 for r in records.values() if r is None),
        left_out_blocked=left_out,
        baseline_reused=baseline_reused,
        wall_s=time.perf_counter() - started,
        case_wall_s=case_wall,
    )


def leg_facts(network: Network, leg_id: str) -> dict:
    leg = network.legs.loc[leg_id]
    names = network.nodes["name"]
    return {
        "mode": leg["mode"],
        "from_node": leg["from_node"],
        "from_name": str(names.get(leg["from_node"], "")),
        "to_node": leg["to_node"],
        "to_name": str(names.get(leg["to_node"], "")),
        "length_km": round(float(leg["length_km"]), 2),
    }


def write_impact_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    return write_csv(pd.DataFrame(list(rows), columns=IMPACT_COLUMNS), path)


# ---------------------------------------------------------------- the map

IMPACT_CLASSES = (
    # (class, layer label, style)
    ("cuts_off", "Cuts off PPS", {"color": "#b2182b", "weight": 6, "opacity": 0.95}),
    ("late", "Makes PPS late", {"color": "#f46d43", "weight": 5, "opacity": 0.95}),
    ("extra", "Costs extra hours or km", {"color": "#fdae61", "weight": 4, "opacity": 0.95}),
    ("none", "No impact (plan re-made, no loss)", {"color": "#1a9850", "weight": 3, "opacity": 0.9}),
    ("unused", "Not used by the plan (no impact)", {"color": "#66bd63", "weight": 2, "opacity": 0.8}),
)
UNTESTED_STYLE = {"color": "#999999", "weight": 1, "opacity": 0.5}


def impact_class(row: Mapping[str, Any]) -> str:
    if row["newly_unserved_pps"]:
        return "cuts_off"
    if row["late_pps"]:
        return "late"
    if row["extra_vehicle_hours"] > 0 or row["extra_km"] > 0:
        return "extra"
    return "none" if row["replanned"] else "unused"


def _impact_rows(row: Mapping[str, Any], names: Mapping[str, str]) -> list[tuple[str, str]]:
    def named(ids: str) -> str:
        nodes = ids.split()
        shown = ", ".join(f"{names.get(n, n)} ({n})" for n in nodes[:10])
        return shown + (f" and {len(nodes) - 10} more" if len(nodes) > 10 else "")

    rows = [
        ("Rank", str(row["rank"])),
        ("Mode", str(row["mode"])),
        ("From", f"{row['from_name']} ({row['from_node']})"),
        ("To", f"{row['to_name']} ({row['to_node']})"),
        ("Length", f"{row['length_km']:,.1f} km"),
        ("Trips on it in the plan", str(row["baseline_trips"])),
        ("Re-planned kabupaten", row["replanned"] or "none (the plan does not use it)"),
        ("PPS cut off", str(row["newly_unserved_pps"])),
    ]
    rows += [
        (f"  {reason.replace('_', ' ')}", str(row[reason])) for reason in UNSERVED_REASONS if row[reason]
    ]
    rows += [
        ("PPS late", str(row["late_pps"])),
        ("Extra vehicle-hours", f"{row['extra_vehicle_hours']:+,.2f}"),
        ("Extra km", f"{row['extra_km']:+,.1f}"),
    ]
    rows += [(f"  {m}", f"{row[f'extra_km_{m}']:+,.1f}") for m in MODES if row[f"extra_km_{m}"]]
    if row["unserved_pps"]:
        rows.append(("Cut off", named(row["unserved_pps"])))
    if row["late_pps_ids"]:
        rows.append(("Late", named(row["late_pps_ids"])))
    return rows


def contingency_map_content(
    rows: Sequence[Mapping[str, Any]], network: Network, inputs: ScenarioInputs
) -> MapContent:
    """Tested legs coloured by the impact of their loss, the PPS they cut off, and the scenario's blocked legs."""
    legs, nodes = network.legs, network.nodes
    names = {str(k): str(v) for k, v in nodes["name"].items()}
    by_class: dict[str, list[dict]] = defaultdict(list)
    cut_by: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        geometry = legs.at[row["leg_id"], "geometry"]
        if geometry is not None and not geometry.is_empty:
            by_class[impact_class(row)].append(
                map_feature(geometry, str(row["leg_id"]), _impact_rows(row, names), id=str(row["leg_id"]))
            )
        for node in row["unserved_pps"].split():
            cut_by[node].append(str(row["leg_id"]))
    tested = {row["leg_id"] for row in rows}

    def leg_features(leg_ids: Iterable[str], status: str) -> list[dict]:
        out = []
        for leg_id in sorted(leg_ids):
            leg = legs.loc[leg_id]
            if leg.geometry is None or leg.geometry.is_empty:
                continue
            rows_ = [
                ("Mode", str(leg["mode"])),
                ("From", f"{names.get(leg['from_node'], '')} ({leg['from_node']})"),
                ("To", f"{names.get(leg['to_node'], '')} ({leg['to_node']})"),
                ("Status", status),
            ]
            out.append(map_feature(leg.geometry, str(leg_id), rows_))
        return out

    area = legs_in_kabupaten(network, inputs.kabupaten)
    blocked = legs.index[legs["status"] == "blocked"]
    english = language("en")  # the contingency map is the planning office's own analysis
    layers = list(
        boundary_layers(
            load_boundaries(network.source) if network.source else None, lanal=False, lang=english
        )
    )
    layers.append(
        MapLayer(
            "Legs not tested",
            "line",
            leg_features((leg for leg in area if leg not in tested), "open, not tested"),
            UNTESTED_STYLE,
            show=False,
            swatch=UNTESTED_STYLE["color"],
        )
    )
    for name, label, style in reversed(IMPACT_CLASSES):  # the worst drawn last, on top
        count = len(by_class[name])
        layers.append(
            MapLayer(
                f"{label} ({count})", "line", by_class[name], style, show=count > 0, swatch=style["color"]
            )
        )
    layers.append(
        MapLayer(
            "Blocked in the scenario",
            "line",
            leg_features(blocked, "BLOCKED in the scenario"),
            LEG_STYLES["blocked"],
            swatch=LEG_STYLES["blocked"]["color"],
            dashed=True,
        )
    )
    cut_nodes = nodes.loc[sorted(cut_by)]
    layers.append(
        MapLayer(
            "PPS a single leg can cut off",
            "point",
            [
                map_feature(
                    node.geometry,
                    names.get(str(node_id), str(node_id)),
                    [("Node", str(node_id)), ("Cut off when blocked", " ".join(cut_by[str(node_id)]))],
                    id=str(node_id),
                )
                for node_id, node in cut_nodes.iterrows()
                if node.geometry is not None and not node.geometry.is_empty
            ],
            POINT_STYLES["unserved"],
            swatch=POINT_STYLES["unserved"]["fillColor"],
        )
    )
    shown = [legs.at[leg, "geometry"] for leg in sorted(tested)] + list(cut_nodes.geometry)
    shown = [g for g in shown if g is not None and not g.is_empty]
    min_x, min_y, max_x, max_y = (
        (float(v) for v in shapely.total_bounds(shown)) if shown else (116.0, -2.5, 119.0, 2.5)
    )
    legend = [
        (
            "box" if layer.kind == "polygon" else "dot" if layer.kind == "point" else "line",
            layer.label,
            layer.style,
        )
        for layer in layers
    ]
    counts = defaultdict(int)
    for row in rows:
        counts[impact_class(row)] += 1
    subtitle = (
        f"{len(rows)} legs tested, each coloured by the worst effect of its loss: {counts['cuts_off']} cut off "
        f"PPS, {counts['late']} make PPS late, {counts['extra']} only cost extra hours or km, "
        f"{counts['none'] + counts['unused']} cost nothing."
    )
    bounds = (min_x, min_y, max_x, max_y)
    return MapContent(
        f"{inputs.scenario.name}: contingency (N-1)", subtitle, layers, bounds, legend, lang=english.code
    )


def write_contingency_map(
    rows: Sequence[Mapping[str, Any]], network: Network, inputs: ScenarioInputs, path: Path
) -> Path:
    return write_text(path, render_map_html(contingency_map_content(rows, network, inputs)))
