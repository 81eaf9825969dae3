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
import io
import json
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

import planner
from planner.contingency_report import summary_html, write_contingency_map
from planner.dispatch import KabupatenResult, KabupatenTask, plan_kabupaten
from planner.errors import InputError
from planner.execution import Backend, NoProgress, Progress, run_jobs
from planner.fileio import write_csv, write_json, write_text
from planner.kpis import Travel
from planner.network import Network, legs_in_kabupaten
from planner.nodes import MODES, PAIR_JOIN, case_legs, is_pps
from planner.pipeline import Problem, kabupaten_tasks, load_problem, search_settings, trip_route
from planner.plan import UNSERVED_REASONS, Route
from planner.replan import first_stage, merge_unserved, second_stage
from planner.scenario import ScenarioInputs, display_path
from planner.settings import SearchSettings
from planner.validate import Expectations

CASE_FORMAT = "kpu-contingency-case"
CASE_VERSION = 2  # 2: the baseline keeps its routes; cases re-plan incrementally (or say from_scratch)
# 2: a PPK's trips are held, not dropped, while its goods still arrive in time;
# 3: a dropped trip takes the vehicle's later trips along (`replan._with_later_trips`)
INCREMENTAL_RULE = 3
DEFAULT_TIME_LIMIT_S = 10.0  # per kabupaten; a safety net only, the deterministic budgets set the effort
LATE_MARGIN_MIN = 60  # a PPS served more than this much later than in the baseline counts as late
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
    kinds = {v.vehicle_id: v.kind for v in task.vehicles}
    travel = Travel()
    vehicle_minutes = 0
    arrival: dict[str, int] = {}
    trips_on: dict[str, int] = defaultdict(int)
    for route in routes:
        travel.add(route, kinds[route.vehicle_id], task.network.legs)
        vehicle_minutes += expect.minute(route.stops[-1].arrival) - expect.minute(route.stops[0].arrival)
        for stop in route.stops:
            if stop.deliver and is_pps(stop.node_id):
                minute = expect.minute(stop.arrival)
                arrival[stop.node_id] = max(arrival.get(stop.node_id, 0), minute)
        for leg_id in set(route.legs):
            trips_on[leg_id] += 1
    outcome = {
        "km_by_mode": {m: round(v, 3) for m, v in travel.km_by_mode.items()},
        "travel_hours": round(travel.hours, 3),
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
    network = context.network.blocked(case_legs(case.leg_id))
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
            if is_pps(node) and node not in before["unserved"]:
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
            b.get("trips_on_leg", {}).get(leg, 0) for b in baseline.values() for leg in case_legs(leg_id)
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
    problem: Problem, time_limit_s: float, incremental: bool = True
) -> tuple[ContingencyContext, SearchSettings]:
    """What every case needs (the kabupaten tasks of the baseline, what the plan must achieve) and the
    deterministic search settings of the analysis."""
    # float: a limit of 30 and one of 30.0 must give the same case keys
    settings = search_settings(problem, float(time_limit_s), deterministic=True)
    tasks = kabupaten_tasks(problem, settings)
    return ContingencyContext({t.kabupaten_code: t for t in tasks}, problem.expect, incremental), settings


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


@dataclass
class _Cases:
    """The chosen cases sorted out: a leg no baseline route uses needs no solve (record None), a case finished
    in an earlier run is read back (`reused`), the others are to solve."""

    records: dict[str, dict | None]
    to_solve: list[Case]
    reused: int

    @classmethod
    def of(
        cls,
        chosen: Sequence[str],
        baseline: Mapping[str, dict],
        cases_dir: Path,
        key_of: Callable[[str], str],
    ) -> _Cases:
        users: dict[str, list[str]] = defaultdict(list)
        for code, outcome in baseline.items():
            for leg_id in outcome["trips_on_leg"]:
                users[leg_id].append(code)
        for case in chosen:
            if PAIR_JOIN in case:
                users[case] = sorted({code for leg in case_legs(case) for code in users.get(leg, [])})
        found = cls({}, [], 0)
        for leg_id in chosen:
            if not users.get(leg_id):
                found.records[leg_id] = None
                continue
            case = Case(leg_id, key_of(leg_id), tuple(sorted(users[leg_id])))
            stored = load_record(case_path(cases_dir, leg_id), case.key)
            if stored is not None:
                found.records[leg_id] = stored
                found.reused += 1
            else:
                found.to_solve.append(case)
        return found


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
    problem = load_problem(scenario_path)
    inputs, network = problem.inputs, problem.inputs.network
    if options.pairs is not None:
        read_pair_file(options.pairs, network)  # a bad file fails before any solving
    elif options.legs not in LEG_CHOICES:
        read_leg_file(Path(options.legs), network)
    context, settings = contingency_context(problem, options.time_limit_s, options.incremental)
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
    left_out = [case for case in chosen if blocked.intersection(case_legs(case))]
    chosen = [case for case in chosen if case not in left_out][: options.limit]

    cases = _Cases.of(
        chosen, baseline, cases_dir, lambda leg_id: case_key(fingerprint, settings, leg_id, method)
    )
    records, to_solve, reused = cases.records, cases.to_solve, cases.reused

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
        parts = [leg_facts(network, leg) for leg in case_legs(leg_id)]
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
