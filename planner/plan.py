"""The plan: plain, versioned JSON that the validator, maps, reports and re-planner read without the solver.

The format is documented in docs/plan-format.md. Quantities are whole units of the 14 catalog items,
times are ISO 8601 datetimes with the Asia/Makassar offset (+08:00).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from planner.errors import InputError
from planner.fileio import write_text

PLAN_FORMAT = "kpu-logistics-plan"
PLAN_VERSION = 1

MAX_PLAN_BYTES = 200_000_000  # the whole-Kaltim plan is a few MB; more is not a plan (memory bound)
MAX_PROBLEMS = 20  # format errors listed in the message
MAX_DEPTH = 32  # a plan nests 6 levels (kpis.kabupaten.<code>.km_by_mode.<mode>); more is not a plan

# A kabupaten code names files and folders (maps/map-<code>.html, documents/<code>/): digits and a dot only
KabupatenCode = Annotated[str, StringConstraints(pattern=r"^\d{2}\.\d{2}$")]

UnservedReason = Literal["unreachable", "no_vehicle", "too_late", "capacity", "planner_error"]
# why a stop the planner worked on is not served (planner_error: the planner failed on its kabupaten)
UNSERVED_REASONS = ("unreachable", "too_late", "capacity", "no_vehicle", "planner_error")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScenarioRef(_Model):
    name: str
    hash: str = Field(description="sha256 of the scenario file content")
    path: str | None = None


class Calendar(_Model):
    timezone: str = "Asia/Makassar"
    start: AwareDatetime
    ppk_deadline: AwareDatetime
    pps_deadline: AwareDatetime


class Stop(_Model):
    node_id: str
    arrival: AwareDatetime
    departure: AwareDatetime
    deliver: dict[str, int] = Field(default_factory=dict, description="item id -> units unloaded here")
    load: dict[str, int] = Field(default_factory=dict, description="item id -> units loaded here")
    tps_kits: list[int] = Field(
        default_factory=list,
        description="at a PPS: the TPS numbers (1-based within the desa) of the TPS kits handed over here",
    )


class Route(_Model):
    vehicle_id: str = Field(description="one physical vehicle; a vehicle may drive several routes (trips)")
    vehicle_type: str
    kabupaten_code: KabupatenCode
    base: str = Field(description="node id where the trip starts and ends")
    tier: int = Field(ge=1, le=2, description="1: warehouse -> PPK (and transfer ports), 2: PPK -> PPS")
    trip: int = Field(default=1, ge=1)
    stops: list[Stop] = Field(min_length=2, description="the base first and last, the stops in between")
    legs: list[str] = Field(description="leg ids travelled in order, from base back to base")
    stranded_at: str | None = Field(
        default=None,
        description="set by a re-plan when no open leg leads the vehicle home: the trip ends at this node",
    )
    returned: dict[str, int] = Field(
        default_factory=dict,
        description="set by a re-plan: goods a trip under way brings back to its base (stops it no longer makes)",
    )


class Unserved(_Model):
    node_id: str
    kabupaten_code: KabupatenCode
    reason: UnservedReason
    detail: str = ""


class Replan(_Model):
    based_on: str = Field(description="path of the plan this one re-plans")
    based_on_hash: str = Field(description="sha256 of that plan's content")
    at: AwareDatetime = Field(description="the moment of the change: stops and legs before it are as driven")
    blocked: list[str] = Field(default_factory=list, description="legs blocked at `at`")
    unblocked: list[str] = Field(default_factory=list, description="legs opened again at `at`")
    replanned_kabupaten: list[KabupatenCode] = Field(default_factory=list)
    based_on_scenario_hash: str | None = Field(
        default=None,
        description="set by `replan --force-scenario`: the hash of the previous plan's scenario (now replaced)",
    )


class KabupatenKpis(_Model):
    """Key figures of one kabupaten's trips (planner.kpis computes them; the validator recomputes them)."""

    vehicles_used: int = Field(ge=0)
    trips: int = Field(ge=0)
    km_by_mode: dict[str, float] = Field(
        description="km driven or sailed per leg mode (road, river, sea, access)"
    )
    hours_by_mode: dict[str, float] = Field(description="hours moving per leg mode")
    cost_idr: int = Field(description="cost per km plus cost per vehicle-day, rupiah")
    ppk_completion: str | None = Field(description="ISO time the last PPK gets its goods")
    pps_completion: str | None = Field(description="ISO time the last PPS gets its goods")
    slack_hours_ppk: float | None = Field(description="least hours between a PPK delivery and its deadline")
    slack_hours_pps: float | None = Field(description="least hours between a PPS delivery and its deadline")
    unserved: int = Field(ge=0)


class TotalKpis(_Model):
    """Key figures of the whole plan."""

    vehicles_used: int = Field(ge=0)
    trips: int = Field(ge=0)
    km_by_mode: dict[str, float]
    hours_by_mode: dict[str, float]
    cost_idr: int
    unserved: int = Field(ge=0)
    pps_completion: str | None


class PlanKpis(_Model):
    total: TotalKpis
    kabupaten: dict[str, KabupatenKpis]


class Plan(_Model):
    format: Literal["kpu-logistics-plan"] = PLAN_FORMAT
    version: int = PLAN_VERSION
    scenario: ScenarioRef
    network: str = Field(description="path of the network GeoPackage the plan was made on")
    calendar: Calendar
    blocked_legs: list[str] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    unserved: list[Unserved] = Field(default_factory=list)
    kpis: PlanKpis | None = Field(default=None, description="key figures, recomputed by the validator")
    replan: Replan | None = Field(default=None, description="set when this plan re-plans another one")
    failed_kabupaten: list[KabupatenCode] = Field(
        default_factory=list,
        description="kabupaten the planner failed on: their stops are unserved with reason planner_error",
    )


def file_hash(path: str | Path) -> str:
    """`sha256:<hex>` of a file's bytes (a plan records its scenario's)."""
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def content_hash(text: str) -> str:
    """`sha256:<hex>` of a text's UTF-8 bytes."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def to_json(plan: Plan) -> str:
    """The plan as the JSON text plan.json holds (indent 1, UTF-8): the same plan always gives the same bytes."""
    return json.dumps(plan.model_dump(mode="json"), indent=1, ensure_ascii=False) + "\n"


def write_plan(plan: Plan, path: str | Path) -> Path:
    """Write the plan to `path` atomically; returns the path."""
    return write_text(path, to_json(plan))


def _too_deep(raw: object, limit: int = MAX_DEPTH) -> str | None:
    """The path of the first value nested deeper than `limit` levels, or None (walked without recursion)."""
    todo: list[tuple[object, str, int]] = [(raw, "", 0)]
    while todo:
        value, where, depth = todo.pop()
        if depth > limit:
            return where or "(top)"
        children = (
            value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        )
        todo += [(child, f"{where}.{key}" if where else str(key), depth + 1) for key, child in children]
    return None


def read_plan(path: str | Path) -> Plan:
    """The plan in a plan.json; InputError (exit 2) naming the file and the field for anything malformed."""
    path = Path(path)
    if not path.is_file():
        raise InputError("plan file not found", source=path)
    if path.stat().st_size > MAX_PLAN_BYTES:
        raise InputError(f"not a plan: larger than {MAX_PLAN_BYTES // 1_000_000} MB", source=path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:  # not JSON, not UTF-8, or a number too long to read
        raise InputError(f"not a JSON file ({str(err)[:200]})", source=path) from None
    except RecursionError:
        raise InputError(f"not a plan: JSON nested deeper than {MAX_DEPTH} levels", source=path) from None
    deep = _too_deep(raw)
    if deep is not None:
        raise InputError(f"not a plan: field {deep!r} is nested deeper than {MAX_DEPTH} levels", source=path)
    if not isinstance(raw, dict) or raw.get("format") != PLAN_FORMAT:
        raise InputError(f"not a plan: field 'format' must be {PLAN_FORMAT!r}", source=path)
    if raw.get("version") != PLAN_VERSION:
        raise InputError(
            f"plan version {raw.get('version')!r} is not supported (expected {PLAN_VERSION})", source=path
        )
    try:
        return Plan.model_validate(raw)
    except ValidationError as err:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        if len(problems) > MAX_PROBLEMS:
            problems = [*problems[:MAX_PROBLEMS], f"... and {len(problems) - MAX_PROBLEMS} more"]
        raise InputError("the plan does not follow the plan format", source=path, problems=problems) from None


def stops_frame(plan: Plan) -> pd.DataFrame:
    """One row per stop of every route, one column per item delivered (for CSV and Excel)."""
    rows = []
    for route in plan.routes:
        for seq, stop in enumerate(route.stops):
            row = {
                "vehicle_id": route.vehicle_id,
                "vehicle_type": route.vehicle_type,
                "kabupaten_code": route.kabupaten_code,
                "tier": route.tier,
                "trip": route.trip,
                "seq": seq,
                "node_id": stop.node_id,
                "arrival": stop.arrival.isoformat(),
                "departure": stop.departure.isoformat(),
            }
            row.update({f"deliver_{k}": v for k, v in stop.deliver.items()})
            row.update({f"load_{k}": v for k, v in stop.load.items()})
            rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.fillna(0) if not frame.empty else frame


def legs_frame(plan: Plan) -> pd.DataFrame:
    """One row per leg driven, per route in order (legs.csv)."""
    rows = [
        {
            "vehicle_id": r.vehicle_id,
            "vehicle_type": r.vehicle_type,
            "kabupaten_code": r.kabupaten_code,
            "tier": r.tier,
            "trip": r.trip,
            "seq": i,
            "leg_id": leg,
        }
        for r in plan.routes
        for i, leg in enumerate(r.legs)
    ]
    return pd.DataFrame(
        rows, columns=["vehicle_id", "vehicle_type", "kabupaten_code", "tier", "trip", "seq", "leg_id"]
    )
