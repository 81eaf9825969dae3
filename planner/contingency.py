"""Contingency (N-1) analysis: block each leg in turn, plan again, rank the legs by what their loss costs.

A case is the scenario with one more blocked leg, from the start of distribution (a what-if before the trucks
leave). The baseline plan (the scenario as it is) is solved first with the same settings. A kabupaten whose
baseline routes do not use the leg keeps its baseline plan: that plan is still feasible without the leg, so its
loss costs that kabupaten nothing (re-solving it would only add search noise). A leg no route uses has no impact
and needs no solve. In a kabupaten whose routes use the leg, a case re-plans incrementally (the default): the
re-plan machinery at the plan start (planner.replan.first_stage, second_stage) keeps every trip that does not
use the leg and does not depend on one that does (the goods it carries, the port it starts from), and only the
goods of the dropped trips are planned again, with the kept trips' vehicles busy as planned; a PPK's trips are
kept if its goods, planned again, still arrive before they start (else a second stage plans them again too).
`incremental=False` plans those kabupaten again from scratch (for comparison: bench/contingency_incremental.py).

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
import html
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
from planner.plan import Route
from planner.replan import first_stage, merge_unserved, second_stage
from planner.scenario import ScenarioInputs, display_path, load_inputs, load_scenario
from planner.search import SearchSettings
from planner.solve import expectations, kabupaten_tasks, search_settings, trip_route
from planner.validate import Expectations

CASE_FORMAT = "kpu-contingency-case"
CASE_VERSION = 2  # 2: the baseline keeps its routes; cases re-plan incrementally (or say from_scratch)
INCREMENTAL_RULE = 2  # 2: a PPK's trips are held, not dropped, while its goods still arrive in time
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
    "fallback",
    "unserved_pps",
    "late_pps_ids",
]
PAIR_JOIN = " & "  # an N-2 case's id: its two leg ids joined


# ---------------------------------------------------------------- outcome of one kabupaten plan


def kabupaten_outcome(
    routes: Sequence[Route],
    unserved: Mapping[str, str],
    task: KabupatenTask,
    expect: Expectations,
    with_legs: bool = False,
) -> dict:
    """What the impact is measured on, as JSON-ready data: km per mode, hours, PPS arrivals, unserved.

    `routes`: the kabupaten's trips as plan routes; `unserved`: node id -> reason. With `with_legs` (the
    baseline) also the number of trips on each leg and the routes themselves (what a case keeps)."""
    legs = task.network.legs
    mode_of, km_of = legs["mode"].to_dict(), legs["length_km"].to_dict()
    kinds = {v.vehicle_id: v.kind for v in task.vehicles}
    km = dict.fromkeys(MODES, 0.0)
    travel_hours = 0.0
    vehicle_minutes = 0
    arrival: dict[str, int] = {}
    trips_on: dict[str, int] = defaultdict(int)
    for route in routes:
        speeds = kinds[route.vehicle_id].speeds
        for leg_id in route.legs:
            mode, length = mode_of[leg_id], float(km_of[leg_id])
            km[mode] += length
            speed = speeds.speed_on(legs.loc[leg_id])
            travel_hours += length / speed if speed else 0.0
        vehicle_minutes += expect.minute(route.stops[-1].arrival) - expect.minute(route.stops[0].arrival)
        for stop in route.stops:
            if stop.deliver and stop.node_id.startswith("pps:"):
                minute = expect.minute(stop.arrival)
                arrival[stop.node_id] = max(arrival.get(stop.node_id, 0), minute)
        for leg_id in set(route.legs):
            trips_on[leg_id] += 1
    outcome = {
        "km_by_mode": {m: round(v, 3) for m, v in km.items()},
        "travel_hours": round(travel_hours, 3),
        "vehicle_hours": round(vehicle_minutes / 60, 3),
        "trips": len(routes),
        "vehicles": len({r.vehicle_id for r in routes}),
        "pps_arrival": dict(sorted(arrival.items())),
        "unserved": dict(sorted(unserved.items())),
    }
    if with_legs:
        outcome["trips_on_leg"] = dict(sorted(trips_on.items()))
        outcome["routes"] = [r.model_dump(mode="json") for r in routes]
    return outcome


def _routes(result: KabupatenResult, expect: Expectations) -> list[Route]:
    return [trip_route(t, result.kabupaten_code, expect.start) for t in result.trips]


# ---------------------------------------------------------------- what the workers run


@dataclass(frozen=True)
class ContingencyContext:
    """Sent once to every worker: the baseline task of each kabupaten (all sharing one network), what the
    plan must achieve, and (for the cases) the baseline routes of each kabupaten."""

    tasks: Mapping[str, KabupatenTask]
    expect: Expectations
    incremental: bool = True
    baseline_routes: Mapping[str, tuple[Route, ...]] = field(default_factory=dict)

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
    result = plan_kabupaten(task)
    unserved = {m.node_id: m.reason for m in result.unserved}
    outcome = kabupaten_outcome(
        _routes(result, context.expect), unserved, task, context.expect, with_legs=True
    )
    return {"kabupaten_code": code, "outcome": outcome, "wall_s": round(time.perf_counter() - started, 2)}


def replan_kabupaten(context: ContingencyContext, code: str, network: Network) -> dict:
    """The outcome of kabupaten `code` on `network` (the baseline's with the case's leg blocked).

    Incremental: the baseline trips that neither use a blocked leg nor depend on one are kept as planned and
    only the goods of the others are planned again, with a share of the time budget as large as the share of
    the goods; from scratch: the whole kabupaten is planned again."""
    task = replace(context.tasks[code], network=network)
    expect = replace(context.expect, network=network)
    before = context.baseline_routes[code]
    if not context.incremental:
        result = plan_kabupaten(task)
        unserved = {m.node_id: m.reason for m in result.unserved}
        routes = _routes(result, expect)
        return {**kabupaten_outcome(routes, unserved, task, expect), **fallback(before, routes, network)}
    first = first_stage(task, before, expect, 0)
    result = plan_kabupaten(first.task)
    routes = _routes(result, expect)
    missed = merge_unserved([], first, result.unserved)
    kept, replanned = first.all_kept, len(first.dropped)
    second = second_stage(task, first, routes, missed, expect, 0) if first.held else None
    if second is not None:
        result = plan_kabupaten(second.task)
        kept, routes = second.kept, _routes(result, expect)
        missed = merge_unserved(missed, second, result.unserved)
        replanned += len([r for r in second.dropped if r in before])
    unserved = {m.node_id: m.reason for m in missed}
    routes = [*kept, *routes]
    outcome = kabupaten_outcome(routes, unserved, task, expect)
    return {
        **outcome,
        **fallback(before, routes, network),
        "kept_trips": len(before) - replanned,
        "replanned_trips": replanned,
        "stages": 1 if second is None else 2,
    }


def fallback(before: Sequence[Route], after: Sequence[Route], network: Network) -> dict:
    """How the plan gets round the loss: the modes of the legs it drives now and did not before (access links
    left out), and the bridges and ferries among them."""
    legs = network.legs
    new = {leg for r in after for leg in r.legs} - {leg for r in before for leg in r.legs}
    new = sorted(leg for leg in new if legs.at[leg, "mode"] != "access")
    km: dict[str, float] = defaultdict(float)
    for leg in new:
        km[str(legs.at[leg, "mode"])] += float(legs.at[leg, "length_km"])
    crossings = sorted(
        {str(legs.at[leg, "crossing"]) for leg in new if "crossing" in legs and legs.at[leg, "crossing"]}
        - {"nan", "None"}
    )
    return {"fallback_km": {m: round(v, 1) for m, v in sorted(km.items())}, "fallback_crossings": crossings}


def run_case(context: ContingencyContext, case: Case) -> dict:
    """Plan the kabupaten of a case again with its leg blocked; the record kept in <out>/cases/."""
    started = time.perf_counter()
    network = context.network.blocked(case.leg_id.split(PAIR_JOIN))
    outcomes = {code: replan_kabupaten(context, code, network) for code in case.kabupaten}
    return {
        "format": CASE_FORMAT,
        "version": CASE_VERSION,
        "leg_id": case.leg_id,
        "key": case.key,
        "method": "incremental" if context.incremental else "from_scratch",
        "replanned": list(case.kabupaten),
        "kabupaten": outcomes,
        "wall_s": round(time.perf_counter() - started, 2),
    }


# ---------------------------------------------------------------- impact and ranking


def leg_impact(
    leg_id: str, baseline: Mapping[str, dict], case: Mapping[str, Any] | None, pps_deadline: int
) -> dict:
    """The impact columns of one leg (or pair: `leg_id` "A & B"). `case` is None for a leg no baseline route
    uses (no impact). `fallback`: km per mode of the legs the new plan drives and the baseline did not, and
    the crossings among them (what the officer falls back on)."""
    replanned = list(case["replanned"]) if case else []
    newly = dict.fromkeys(UNSERVED_REASONS, 0)
    unserved_ids: list[str] = []
    late_ids: list[str] = []
    extra_km = dict.fromkeys(MODES, 0.0)
    extra_vehicle_hours = extra_travel_hours = 0.0
    fallback_km: dict[str, float] = defaultdict(float)
    crossings: set[str] = set()
    for code in replanned:
        before, after = baseline[code], case["kabupaten"][code]
        for mode, value in after.get("fallback_km", {}).items():
            fallback_km[mode] += value
        crossings |= set(after.get("fallback_crossings", []))
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
        "baseline_trips": sum(
            b.get("trips_on_leg", {}).get(leg, 0)
            for b in baseline.values()
            for leg in leg_id.split(PAIR_JOIN)
        ),
        "replanned": " ".join(replanned),
        "newly_unserved_pps": len(unserved_ids),
        **newly,
        "late_pps": len(late_ids),
        "extra_vehicle_hours": tidy(extra_vehicle_hours, 2),
        "extra_travel_hours": tidy(extra_travel_hours, 2),
        "extra_km": tidy(sum(extra_km.values()), 1),
        **{f"extra_km_{m}": tidy(v, 1) for m, v in extra_km.items()},
        "fallback": "; ".join(
            [f"{mode} {value:,.1f} km" for mode, value in sorted(fallback_km.items())]
            + [f"via {c}" for c in sorted(crossings)]
        ),
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


def _read_text_file(path: Path, what: str) -> str:
    """The text of an officer's file (BOM dropped); InputError naming the file if it is missing or unreadable."""
    if not path.is_file():
        raise InputError(f"{what} not found", source=display_path(path))
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(
            f"cannot read the {what} ({type(err).__name__})", source=display_path(path)
        ) from None


def read_leg_file(path: Path, network: Network) -> list[str]:
    """Leg ids from a text file (one a line, '#' comments) or a CSV with a `leg_id` column, in file order."""
    lines = _read_text_file(path, "leg file").splitlines()
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


def read_pair_file(path: Path, network: Network) -> list[str]:
    """N-2 cases from a text or CSV file: two leg ids a line ("LEG_A,LEG_B" or "LEG_A LEG_B"; '#' comments;
    a header line `leg_a,leg_b` is skipped). Returns the case ids "LEG_A & LEG_B", in file order."""
    text = _read_text_file(path, "pair file")
    pairs: list[str] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = [f.strip() for f in re.split(r"[,\s]+", line.split("#", 1)[0].strip()) if f.strip()]
        if not fields or fields == ["leg_a", "leg_b"]:
            continue
        if len(fields) != 2 or fields[0] == fields[1]:
            problems.append(f"line {number}: give two different leg ids (got {len(fields)} field(s))")
            continue
        unknown = [f for f in fields if f not in network.legs.index]
        problems += [f"line {number}: {f!r} is not a leg of the network" for f in unknown]
        if not unknown:
            pairs.append(PAIR_JOIN.join(sorted(fields)))
    if problems:
        raise InputError("bad leg pairs", source=display_path(path), problems=problems[:20])
    if not pairs:
        raise InputError("the pair file lists no leg pairs", source=display_path(path))
    return list(dict.fromkeys(pairs))


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


def case_key(fingerprint: str, settings: SearchSettings, leg_id: str | None, method: str = "") -> str:
    """What a stored case must match to be reused: inputs, settings, leg, method and the planner version."""
    payload = {
        "method": method,
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
    incremental: bool = True  # False: the kabupaten of a case planned again from scratch
    pairs: Path | None = None  # N-2: a file of leg pairs, each blocked together (instead of `legs`)
    lang: str = "id"  # of the summary ringkasan.html


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
    inputs: ScenarioInputs, time_limit_s: float, incremental: bool = True
) -> tuple[ContingencyContext, SearchSettings]:
    # float: a limit of 30 and one of 30.0 must give the same case keys
    settings = search_settings(inputs, float(time_limit_s), deterministic=True)
    expect = expectations(inputs)
    tasks = kabupaten_tasks(inputs, expect, settings)
    return ContingencyContext({t.kabupaten_code: t for t in tasks}, expect, incremental), settings


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
    if options.pairs is not None:
        read_pair_file(options.pairs, network)  # a bad file fails before any solving
    elif options.legs not in LEG_CHOICES:
        read_leg_file(Path(options.legs), network)
    context, settings = contingency_context(inputs, options.time_limit_s, options.incremental)
    # the incremental rule's version is part of a case's key (not the baseline's): cases kept by an older rule
    # are planned again, the baseline is reused
    method = f"incremental-{INCREMENTAL_RULE}" if options.incremental else "from_scratch"
    fingerprint = inputs_fingerprint(inputs)
    cases_dir = out_dir / "cases"
    baseline, baseline_reused = baseline_outcomes(
        context, case_key(fingerprint, settings, None), cases_dir / "baseline.json", options.backend, progress
    )

    context = replace(
        context,
        baseline_routes={
            code: tuple(Route.model_validate(r) for r in outcome["routes"])
            for code, outcome in baseline.items()
        },
    )
    if options.pairs is not None:
        chosen = read_pair_file(options.pairs, network)
    else:
        chosen = choose_legs(options.legs, network, inputs.kabupaten, baseline)
    blocked = set(network.legs.index[network.legs["status"] == "blocked"])
    left_out = [case for case in chosen if blocked.intersection(case.split(PAIR_JOIN))]
    chosen = [case for case in chosen if case not in left_out][: options.limit]

    users: dict[str, list[str]] = defaultdict(list)
    for code, outcome in baseline.items():
        for leg_id in outcome["trips_on_leg"]:
            users[leg_id].append(code)
    for case in chosen:
        if PAIR_JOIN in case:
            users[case] = sorted({code for leg in case.split(PAIR_JOIN) for code in users.get(leg, [])})
    records: dict[str, dict | None] = {}
    to_solve: list[Case] = []
    reused = 0
    for leg_id in chosen:
        if not users.get(leg_id):
            records[leg_id] = None
            continue
        case = Case(leg_id, case_key(fingerprint, settings, leg_id, method), tuple(sorted(users[leg_id])))
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
    write_text(out_dir / "ringkasan.html", summary_html(rows, inputs.scenario.name, options.lang))
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
    """Mode, ends and length of a leg; of a pair, each joined with " & " (lengths added)."""
    if PAIR_JOIN in leg_id:
        parts = [leg_facts(network, leg) for leg in leg_id.split(PAIR_JOIN)]
        joined = {k: PAIR_JOIN.join(str(p[k]) for p in parts) for k in parts[0]}
        return {**joined, "length_km": round(sum(p["length_km"] for p in parts), 2)}
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
    if row["fallback"]:
        rows.append(("Fallback (new legs driven)", str(row["fallback"])))
    if row["unserved_pps"]:
        rows.append(("Cut off", named(row["unserved_pps"])))
    if row["late_pps_ids"]:
        rows.append(("Late", named(row["late_pps_ids"])))
    return rows


LABELLED_TOP = 20  # the legs of this rank or better are labelled on the map (when their loss costs something)


def _case_geometry(legs: pd.DataFrame, case_id: str) -> Any:
    parts = [legs.at[leg, "geometry"] for leg in case_id.split(PAIR_JOIN)]
    parts = [g for g in parts if g is not None and not g.is_empty]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else shapely.union_all(parts)


def contingency_map_content(
    rows: Sequence[Mapping[str, Any]], network: Network, inputs: ScenarioInputs
) -> MapContent:
    """Tested legs coloured by the impact of their loss, the PPS they cut off, and the scenario's blocked legs."""
    legs, nodes = network.legs, network.nodes
    names = {str(k): str(v) for k, v in nodes["name"].items()}
    by_class: dict[str, list[dict]] = defaultdict(list)
    cut_by: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        geometry = _case_geometry(legs, row["leg_id"])
        if geometry is not None and not geometry.is_empty:
            top = row["rank"] <= LABELLED_TOP and impact_class(row) in ("cuts_off", "late", "extra")
            title = f"#{row['rank']} {row['from_name']} - {row['to_name']}" if top else str(row["leg_id"])
            by_class[impact_class(row)].append(
                map_feature(
                    geometry, title, _impact_rows(row, names), id=str(row["leg_id"]), lz=1 if top else None
                )
            )
        for node in row["unserved_pps"].split():
            cut_by[node].append(str(row["leg_id"]))
    tested = {leg for row in rows for leg in row["leg_id"].split(PAIR_JOIN)}

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


SUMMARY_TOP = 20


def summary_html(rows: Sequence[Mapping[str, Any]], scenario_name: str, lang: str = "id") -> str:
    """A one-page summary for KPU and Lanal ("20 ruas paling kritis"): the legs whose loss costs something,
    worst first, in `lang`. Every value from data is escaped."""
    t = language(lang)
    critical = [r for r in rows if impact_class(r) in ("cuts_off", "late", "extra")][:SUMMARY_TOP]
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[impact_class(row)] += 1
    e = html.escape
    head = [
        "contingency.summary.rank",
        "contingency.summary.leg",
        "contingency.summary.mode",
        "contingency.summary.cut_off",
        "contingency.summary.late",
        "contingency.summary.extra_hours",
        "contingency.summary.extra_km",
        "contingency.summary.fallback",
    ]
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{e(str(v))}</td>"
            for v in (
                row["rank"],
                f"{row['from_name']} - {row['to_name']} ({row['leg_id']})",
                row["mode"],
                row["newly_unserved_pps"],
                row["late_pps"],
                t.number(row["extra_vehicle_hours"], 1),
                t.number(row["extra_km"], 1),
                row["fallback"],
            )
        )
        + "</tr>"
        for row in critical
    )
    title = t("contingency.summary.title", n=len(critical), scenario=scenario_name)
    tested = t(
        "contingency.summary.tested",
        tested=len(rows),
        cut=counts["cuts_off"],
        late=counts["late"],
        extra=counts["extra"],
    )
    table = (
        f"<table><tr>{''.join(f'<th>{e(t(h))}</th>' for h in head)}</tr>{body}</table>"
        if critical
        else f"<p>{e(t('contingency.summary.none'))}</p>"
    )
    return (
        f'<!DOCTYPE html><html lang="{e(t.code)}"><head><meta charset="utf-8"><title>{e(title)}</title>'
        "<style>body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:.3em .5em;text-align:left;vertical-align:top}"
        "@page{size:A4 landscape;margin:12mm}</style></head><body>"
        f"<h1>{e(title)}</h1><p>{e(t('contingency.summary.intro'))}</p><p>{e(tested)}</p>{table}</body></html>\n"
    )


def write_contingency_map(
    rows: Sequence[Mapping[str, Any]], network: Network, inputs: ScenarioInputs, path: Path
) -> Path:
    return write_text(path, render_map_html(contingency_map_content(rows, network, inputs)))
