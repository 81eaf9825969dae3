"""Vehicle types and where they are based: the fleet file (YAML) and its expansion onto a network.

A fleet file has two parts:

    vehicle_types:
      truck:                        # id: lower-case letters, digits, '_'
        name: Truk engkel 4 t
        modes: [road]               # road, river, sea (access legs are open to every vehicle)
        capacity_kg: 4000
        capacity_m3: 16
        speed_kmh: {road: 35}       # keys: road, river or river_up + river_down, sea, access (optional)
        rapids_speed_kmh: null      # river speed on the riam (rapids) stretch, both directions
        operating_hours: {start: "06:00", end: "18:00"}   # local time; null = may also travel at night
        load_min: 60                # minutes to load at the start of a trip
        unload_min: 15              # minutes at each stop that hands over goods: the BAST record
        unload_min_per_kit: 1.5     # and minutes per TPS kit handed over (optional, default 0)
        cost_per_km: 7500           # IDR
        cost_per_day: 1500000       # IDR per day used
        tier: "1"                   # "1" warehouse -> PPK, "2" PPK -> PPS, or "both"
        max_driving_min_per_day: 480   # optional (absent or null: no limit); needs operating_hours
        break_after_driving_min: 240   # optional: a break of break_min at a node before passing this much
        break_min: 30                  #   driving since the last break or night
    bases:
      - {type: truck, at: wh:64.11, count: 1}
      - {type: pickup, at: each_ppk, count: 1, kabupaten: ["64.11"]}
      - {type: navy_vessel, at: port:lanal_balikpapan, count: 1, kabupaten: ["64.01"]}

`at` is a node id (wh:..., port:..., jetty:..., ppk:...) or `each_ppk` / `each_warehouse` (every PPK, or
every kabupaten warehouse, of the listed kabupaten, or of all). For a node, `kabupaten` says which
kabupaten the vehicles serve (default: the node's own); `count` vehicles are based there for each.
Vehicle ids read `<type>@<base>#<n>`, numbered per type and base in file order, so a vehicle keeps its id
whether a scenario plans one kabupaten or the province.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from planner.errors import InputError
from planner.paths import TravelSpeeds
from planner.vehicles import VehicleType, stretch_limit

TRAVEL_MODES = ("road", "river", "sea")
SPEED_KEYS = ("road", "river", "river_up", "river_down", "sea", "access")
EACH_PPK = "each_ppk"
EACH_WAREHOUSE = "each_warehouse"
_KABUPATEN_CODE = re.compile(r"^\d{2}\.\d{2}$")

# Bounds of a fleet file. Each is far above any real KPU fleet and far below what overflows the solver
# (capacities become grams and cm3 in 64-bit integers) or exhausts memory (one routing vehicle per unit).
MAX_CAPACITY_KG = 2_000_000  # 2,000 t: a KRI landing ship's load; the fleet's largest vessel carries 10 t
MAX_CAPACITY_M3 = 10_000  # likewise; the kapal motor holds 40 m3
MIN_SPEED_KMH = 0.5  # porters on foot over a riam portage make 2-3 km/h; below 0.5 is a typo
MAX_SPEED_KMH = 200  # the fastest speedboat makes about 80 km/h; 200 would be an aircraft
MAX_MINUTES = 24 * 60  # loading or unloading takes less than a day
MAX_COST_PER_KM = 10_000_000  # IDR; a chartered helicopter costs under 1 million IDR per km
MAX_COST_PER_DAY = 10_000_000_000  # IDR; a navy vessel day costs a few hundred million
MAX_COUNT = 500  # vehicles per base line; Kaltim's busiest warehouse has 8 trucks
MAX_VEHICLES = 5_000  # in a whole fleet after each_ppk expansion; Kaltim's has 360
MAX_FILE_BYTES = 1_000_000  # a scenario or fleet file is a few kB; a larger file is not one
MAX_SHOWN_PROBLEMS = 50  # an officer fixes the first ones and runs again


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class OperatingHours(_Strict):
    """Daily window (local time) in which the vehicle may travel; outside it, it waits (night)."""

    start: time
    end: time

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted_clock_time(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 06:00 as the base-60 number 360
            raise ValueError('write the time in quotes, e.g. "06:00"')
        return value

    @model_validator(mode="after")
    def _start_before_end(self) -> OperatingHours:
        if self.start >= self.end:
            raise ValueError("start must be before end (a window may not run past midnight)")
        return self


class VehicleTypeSpec(_Strict):
    name: str = Field(min_length=1)
    modes: list[Literal["road", "river", "sea"]] = Field(min_length=1)
    capacity_kg: float = Field(gt=0, le=MAX_CAPACITY_KG)
    capacity_m3: float = Field(gt=0, le=MAX_CAPACITY_M3)
    speed_kmh: dict[Literal["road", "river", "river_up", "river_down", "sea", "access"], float]
    rapids_speed_kmh: float | None = Field(default=None, ge=MIN_SPEED_KMH, le=MAX_SPEED_KMH)
    operating_hours: OperatingHours | None
    load_min: int = Field(ge=0, le=MAX_MINUTES)
    unload_min: int = Field(ge=0, le=MAX_MINUTES)
    unload_min_per_kit: float = Field(default=0, ge=0, le=60)
    cost_per_km: float = Field(ge=0, le=MAX_COST_PER_KM)
    cost_per_day: float = Field(ge=0, le=MAX_COST_PER_DAY)
    tier: Literal["1", "2", "both"]
    # road speed per road class of the network (trunk, local); a class not listed runs at speed_kmh.road
    road_class_speed_kmh: dict[Literal["trunk", "local"], float] = {}
    # driving rules: minutes of driving a day, and a break before passing break_after_driving_min of driving
    max_driving_min_per_day: int | None = Field(default=None, gt=0, le=MAX_MINUTES)
    break_after_driving_min: int | None = Field(default=None, gt=0, le=MAX_MINUTES)
    break_min: int = Field(default=0, ge=0, le=MAX_MINUTES)

    @model_validator(mode="after")
    def _driving_rules(self) -> VehicleTypeSpec:
        limited = self.max_driving_min_per_day is not None or self.break_after_driving_min is not None
        if limited and self.operating_hours is None:
            raise ValueError(
                "max_driving_min_per_day and break_after_driving_min need operating_hours (the day they count in)"
            )
        if self.break_after_driving_min is not None and self.break_min <= 0:
            raise ValueError("break_after_driving_min needs break_min (the break's minutes)")
        return self

    @field_validator("tier", mode="before")
    @classmethod
    def _tier_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("speed_kmh")
    @classmethod
    def _positive_speeds(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [f"{k}={v:g}" for k, v in value.items() if not MIN_SPEED_KMH <= v <= MAX_SPEED_KMH]
        if bad:
            raise ValueError(
                f"speeds must be from {MIN_SPEED_KMH:g} to {MAX_SPEED_KMH:g} km/h ({', '.join(bad)})"
            )
        return value

    @model_validator(mode="after")
    def _speed_for_every_mode(self) -> VehicleTypeSpec:
        problems = mode_speed_problems(self.modes, self.speed_kmh, self.rapids_speed_kmh)
        if self.road_class_speed_kmh and "road" not in self.modes:
            problems.append("road_class_speed_kmh: only a road vehicle has road class speeds")
        problems += [
            f"road_class_speed_kmh: {k} must be greater than 0 (got {v:g})"
            for k, v in self.road_class_speed_kmh.items()
            if not v > 0
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self


def mode_speed_problems(
    modes: Sequence[str], speed_kmh: Mapping[str, float], rapids_speed_kmh: float | None
) -> list[str]:
    """Every mode has a speed and every speed a mode."""
    problems = []
    if len(set(modes)) != len(modes):
        problems.append("modes: a mode is listed twice")
    for mode in modes:
        if mode == "river":
            if "river" not in speed_kmh and not {"river_up", "river_down"} <= set(speed_kmh):
                problems.append("speed_kmh: river needs `river` or both `river_up` and `river_down`")
        elif mode not in speed_kmh:
            problems.append(f"speed_kmh: no speed for mode {mode}")
    for key in speed_kmh:
        mode = "river" if key.startswith("river") else key
        if mode != "access" and mode not in modes:
            problems.append(f"speed_kmh: {key} is given but {mode} is not in modes")
    if rapids_speed_kmh is not None and "river" not in modes:
        problems.append("rapids_speed_kmh: only a river vehicle has a rapids speed")
    return problems


class BaseSpec(_Strict):
    type: str = Field(min_length=1)
    at: str = Field(min_length=1)
    count: int = Field(ge=0, le=MAX_COUNT)
    kabupaten: list[str] | None = None

    @field_validator("kabupaten")
    @classmethod
    def _kabupaten_codes(cls, value: list[str] | None) -> list[str] | None:
        bad = [c for c in value or [] if not _KABUPATEN_CODE.match(c)]
        if bad:
            raise ValueError(f"kabupaten codes look like 64.11 (got {', '.join(map(repr, bad))})")
        return value


class FleetSpec(_Strict):
    vehicle_types: dict[str, VehicleTypeSpec] = Field(min_length=1)
    bases: list[BaseSpec] = Field(min_length=1)

    @field_validator("vehicle_types")
    @classmethod
    def _type_ids(cls, value: dict[str, VehicleTypeSpec]) -> dict[str, VehicleTypeSpec]:
        bad = [k for k in value if not re.fullmatch(r"[a-z0-9_]+", k)]
        if bad:
            raise ValueError(f"vehicle type ids are lower-case letters, digits and '_' (got {bad})")
        return value


# ---------------------------------------------------------------- plain data for the solver


@dataclass(frozen=True)
class Vehicle:
    vehicle_id: str  # e.g. truck@wh:64.11#1
    type_id: str
    base: str  # node id where it starts and ends its day
    kabupaten_code: str  # the kabupaten whose deliveries it serves


@dataclass(frozen=True)
class Fleet:
    types: Mapping[str, VehicleType]
    vehicles: tuple[Vehicle, ...]

    def for_kabupaten(self, codes: Iterable[str]) -> Fleet:
        codes = set(codes)
        return Fleet(self.types, tuple(v for v in self.vehicles if v.kabupaten_code in codes))

    def count_by_type(self) -> dict[str, int]:
        counts = Counter(v.type_id for v in self.vehicles)
        return {t: counts.get(t, 0) for t in self.types}


def vehicle_type(type_id: str, spec: VehicleTypeSpec) -> VehicleType:
    """The planner's vehicle type of a fleet file entry: speeds per mode, clock times as minutes of the day."""
    hours = spec.operating_hours
    tiers = frozenset({1, 2}) if spec.tier == "both" else frozenset({int(spec.tier)})
    operating = (_minute_of_day(hours.start), _minute_of_day(hours.end)) if hours else None
    return VehicleType(
        type_id=type_id,
        name=spec.name,
        tiers=tiers,
        speeds=TravelSpeeds(
            dict(spec.speed_kmh),
            spec.rapids_speed_kmh,
            dict(spec.road_class_speed_kmh),
            stretch_limit(operating),
        ),
        capacity_kg=spec.capacity_kg,
        capacity_m3=spec.capacity_m3,
        operating_hours=operating,
        load_min=spec.load_min,
        unload_min=spec.unload_min,
        cost_per_km=spec.cost_per_km,
        cost_per_day=spec.cost_per_day,
        unload_min_per_kit=spec.unload_min_per_kit,
        max_driving_min_per_day=spec.max_driving_min_per_day,
        break_after_driving_min=spec.break_after_driving_min,
        break_min=spec.break_min,
    )


def _minute_of_day(clock: time) -> int:
    return clock.hour * 60 + clock.minute


# ---------------------------------------------------------------- reading and checking


def field_path(loc: Sequence[str | int]) -> str:
    """('bases', 3, 'type') -> 'bases[3].type'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def pydantic_problems(err: ValidationError, source: str | Path) -> list[str]:
    """One readable line per validation error: '<file>: <field path>: <message>'."""
    problems = []
    for error in err.errors(include_url=False):
        path = field_path(error["loc"])
        kind, ctx, given = error["type"], error.get("ctx") or {}, error.get("input")
        if kind == "too_short":
            message = "must not be empty"
        elif kind in ("greater_than", "greater_than_equal"):
            relation = "greater than" if kind == "greater_than" else "at least"
            bound = ctx.get("gt", ctx.get("ge"))
            bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
            message = f"must be {relation} {bound} (got {short_text(repr(given))})"
        elif kind in ("less_than", "less_than_equal"):
            relation = "less than" if kind == "less_than" else "at most"
            bound = ctx.get("lt", ctx.get("le"))
            bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
            message = f"must be {relation} {bound:,} (got {short_text(repr(given))})"
        elif kind == "too_long":
            message = f"is too long (at most {ctx.get('max_length', '?'):,})"
        elif kind == "missing":
            message = "is required"
        elif kind == "extra_forbidden":
            message = "is not a known field (check the spelling)"
        elif kind == "value_error":
            message = short_text(ctx.get("error", error["msg"]), 300)
        else:
            message = short_text(error["msg"], 300)
            if given is not None and not isinstance(given, dict | list):
                message += f" (got {short_text(repr(given))})"
        problems.append(f"{source}: {path}: {message}")
    if len(problems) > MAX_SHOWN_PROBLEMS:
        problems = [
            *problems[:MAX_SHOWN_PROBLEMS],
            f"{source}: and {len(problems) - MAX_SHOWN_PROBLEMS:,} more",
        ]
    return problems


def short_text(text: Any, limit: int = 80) -> str:
    """`text` on one line, cut to `limit` characters: an error quotes at most a short line of a file."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` may be overridden key by key
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"key {short_text(repr(key), 40)} is given twice (lines {seen[key]} and {line})",
                        key_node.start_mark,
                    )
                seen[key] = line
            except TypeError:
                continue  # an unhashable key: construct_mapping reports it
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path, what: str) -> Any:
    """Parse a YAML file; a missing, oversized or malformed file, or a key given twice, is an InputError naming it."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
            problem = f"{path}: {path.stat().st_size:,} bytes: a {what} file has at most {MAX_FILE_BYTES:,}"
            raise InputError(f"the {what} file is too large", source=path, problems=[problem])
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            f"{what} file not found", source=path, problems=[f"{path}: file not found"]
        ) from None
    except (OSError, ValueError) as err:
        problem = (
            f"{path}: cannot read ({type(err).__name__}: {err.strerror if isinstance(err, OSError) else err})"
        )
        raise InputError(f"cannot read the {what} file", source=path, problems=[problem]) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        detail = f"not valid YAML{where}: {short_text(err.problem or err.context, 200)}"
        raise InputError(f"{what} is not valid YAML", source=path, problems=[f"{path}: {detail}"]) from None
    except (yaml.YAMLError, ValueError, RecursionError) as err:
        detail = "not valid YAML: " + " ".join(str(err).split())[:300]
        raise InputError(f"{what} is not valid YAML", source=path, problems=[f"{path}: {detail}"]) from None


def _valid(adapter: TypeAdapter, value: Any) -> Any:
    try:
        return adapter.validate_python(value)
    except (ValidationError, ValueError):
        return None


def _raw_type_problems(raw: Any, source: str) -> list[str]:
    """Mode/speed mismatches of vehicle types that failed validation for another reason as well."""
    if not isinstance(raw, dict) or not isinstance(raw.get("vehicle_types"), dict):
        return []
    problems = []
    for type_id, body in raw["vehicle_types"].items():
        if not isinstance(body, dict):
            continue
        modes = _valid(TypeAdapter(list[Literal["road", "river", "sea"]]), body.get("modes"))
        speeds = _valid(TypeAdapter(dict[str, float]), body.get("speed_kmh"))
        rapids = _valid(TypeAdapter(float | None), body.get("rapids_speed_kmh"))
        if modes and speeds is not None:
            found = mode_speed_problems(modes, speeds, rapids)
            if found:
                problems.append(f"{source}: vehicle_types.{type_id}: {'; '.join(found)}")
    return problems


def _kabupaten_of(nodes: Any) -> set[str]:
    return {str(c) for c in nodes["kabupaten_code"] if _KABUPATEN_CODE.match(str(c))}


def base_problems(
    bases: Sequence[BaseSpec | None], type_ids: Iterable[str], nodes: Any, source: str
) -> list[str]:
    """Each base names a known vehicle type and (given the network's nodes) a known node and kabupaten."""
    type_ids = list(type_ids)
    kabupaten = _kabupaten_of(nodes) if nodes is not None else None
    problems = []
    for i, base in enumerate(bases):
        if base is None:
            continue
        if base.type not in type_ids:
            known = ", ".join(type_ids)
            problems.append(f"{source}: bases[{i}].type: unknown vehicle type {base.type!r} (known: {known})")
        if nodes is None:
            continue
        if base.at not in (EACH_PPK, EACH_WAREHOUSE) and base.at not in nodes.index:
            problems.append(
                f"{source}: bases[{i}].at: unknown node {base.at!r} (nor each_ppk / each_warehouse)"
            )
        problems += [
            f"{source}: bases[{i}].kabupaten: unknown kabupaten {code!r}"
            for code in base.kabupaten or []
            if code not in kabupaten
        ]
    return problems


def check_fleet(
    path: str | Path, nodes: Any = None, label: str | None = None
) -> tuple[FleetSpec | None, list[str]]:
    """Read a fleet file and list every problem ('<file>: <field path>: <message>').

    With `nodes` (Network.nodes), base nodes and kabupaten codes are checked against the network too.
    `label` is how the file is named in the messages (default: the path as given).
    """
    path = Path(path)
    source = label or str(path)
    try:
        raw = read_yaml(path, "fleet")
    except InputError as err:
        return None, err.problems or [str(err)]
    if not isinstance(raw, dict):
        return None, [f"{source}: a fleet file must be a mapping with vehicle_types and bases"]
    if not {"vehicle_types", "bases"} & set(raw):  # another file: say so, without quoting its content
        return None, [f"{source}: not a fleet file (it has neither vehicle_types nor bases)"]
    problems: list[str] = []
    spec: FleetSpec | None = None
    try:
        spec = FleetSpec.model_validate(raw)
    except ValidationError as err:
        problems += pydantic_problems(err, source)
        problems += _raw_type_problems(raw, source)
    if spec is not None:
        bases: list[BaseSpec | None] = list(spec.bases)
        type_ids: Iterable[str] = spec.vehicle_types
    else:
        raw_bases = raw.get("bases") if isinstance(raw.get("bases"), list) else []
        bases = [_valid(TypeAdapter(BaseSpec), b) for b in raw_bases]
        raw_types = raw.get("vehicle_types")
        type_ids = [str(t) for t in raw_types] if isinstance(raw_types, dict) else []
    problems += base_problems(bases, type_ids, nodes, source)
    if spec is not None and nodes is not None and not problems:
        placed = sum(len(_base_nodes(base, nodes)) * base.count for base in spec.bases)
        if placed > MAX_VEHICLES:
            problems.append(
                f"{source}: bases: {placed:,} vehicles in all, more than {MAX_VEHICLES:,} (each_ppk multiplies "
                "count by the number of PPK)"
            )
    problems = list(dict.fromkeys(problems))
    return (spec if not problems else None), problems


def load_fleet_spec(path: str | Path, nodes: Any = None) -> FleetSpec:
    """Read and validate a fleet file; every problem is reported at once in one InputError."""
    spec, problems = check_fleet(path, nodes)
    if problems or spec is None:
        raise InputError("invalid fleet", source=path, problems=problems)
    return spec


def _base_nodes(base: BaseSpec, nodes: Any) -> list[tuple[str, str]]:
    """(node id, kabupaten served) for every place this base line puts vehicles."""
    wanted = set(base.kabupaten) if base.kabupaten else None
    if base.at in (EACH_PPK, EACH_WAREHOUSE):
        kind = "ppk" if base.at == EACH_PPK else "warehouse"
        chosen = nodes[nodes["kind"] == kind]
        places = [
            (str(node), str(kab))
            for node, kab in zip(chosen.index, chosen["kabupaten_code"], strict=True)
            if _KABUPATEN_CODE.match(str(kab)) and (wanted is None or kab in wanted)
        ]
        return sorted(places)
    own = str(nodes.at[base.at, "kabupaten_code"])
    return [(base.at, code) for code in (base.kabupaten or [own])]


def expand_fleet(spec: FleetSpec, network: Any, kabupaten: Iterable[str] | None = None) -> Fleet:
    """Place every vehicle on the network; keep those serving `kabupaten` (all if None)."""
    problems = base_problems(spec.bases, spec.vehicle_types, network.nodes, "fleet")
    if problems:
        raise InputError("the fleet does not fit the network", problems=problems)
    types = {type_id: vehicle_type(type_id, s) for type_id, s in spec.vehicle_types.items()}
    numbers: Counter[tuple[str, str]] = Counter()
    vehicles = []
    for base in spec.bases:
        for node, kab in _base_nodes(base, network.nodes):
            for _ in range(base.count):
                numbers[(base.type, node)] += 1
                vehicle_id = f"{base.type}@{node}#{numbers[(base.type, node)]}"
                vehicles.append(Vehicle(vehicle_id, base.type, node, kab))
            if len(vehicles) > MAX_VEHICLES:
                raise InputError(
                    f"the fleet places more than {MAX_VEHICLES:,} vehicles (bases with each_ppk multiply "
                    "count by the number of PPK): lower the counts"
                )
    fleet = Fleet(types, tuple(vehicles))
    return fleet.for_kabupaten(kabupaten) if kabupaten is not None else fleet


def load_fleet(path: str | Path, network: Any, kabupaten: Iterable[str] | None = None) -> Fleet:
    """Read a fleet file, check it against the network and place its vehicles."""
    return expand_fleet(load_fleet_spec(path, network.nodes), network, kabupaten)
