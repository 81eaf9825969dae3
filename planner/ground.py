"""The real ground under the network: trunk roads, water that roads may not cross, crossings and access rules.

planner.network builds the legs; this module holds the pure geometry and the two officer-editable tables:

- `crossings.csv`: bridges (a local or trunk road leg may cross the Mahakam, a lake or the sea only near one)
  and ferries / speedboat crossings (a road leg with road_class `ferry` that trucks and pickups may use; its
  travel time is the crossing time plus the mean wait, whatever the vehicle's road speed).
- `access.csv`: per desa, the modes by which it is reached when published reports say so (`water`: no road
  leg is built to it; `road_and_water`: it keeps its roads and gets a jetty).

Everything works in UTM 50N metres (planner.network.METRIC_CRS) unless a name says otherwise.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from planner.errors import InputError

CROSSING_KINDS = ("bridge", "ferry")
ACCESS_KINDS = ("water", "road_and_water")
CROSSING_FIELDS = (
    "name",
    "kind",
    "lat_a",
    "lon_a",
    "lat_b",
    "lon_b",
    "radius_km",
    "crossing_min",
    "wait_min",
    "hours",
    "source",
)
ACCESS_FIELDS = ("desa_code", "name", "access", "source")
_HOURS = re.compile(r"^([01]\d|2[0-4]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")


# ---------------------------------------------------------------- crossings.csv


@dataclass(frozen=True)
class Crossing:
    """A bridge or ferry. `a` and `b` are its two ends (lon, lat) on opposite banks or shores."""

    row: int
    name: str
    kind: str
    a: Point
    b: Point
    radius_km: float  # bridges: road legs crossing the water within this distance of the bridge keep going
    crossing_min: float
    wait_min: float
    hours: str  # "HH:MM-HH:MM" local time, recorded for the officer
    source: str

    @property
    def middle(self) -> Point:
        return Point((self.a.x + self.b.x) / 2, (self.a.y + self.b.y) / 2)

    @property
    def hours_per_crossing(self) -> float:
        """Hours a vehicle spends on a ferry leg: the mean wait plus the crossing."""
        return (self.crossing_min + self.wait_min) / 60.0


def _read_rows(path: Path, fields: Iterable[str], what: str) -> list[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise InputError(f"{what} file not found", source=path)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [f for f in fields if f not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{what} lacks the column(s) {', '.join(missing)}", source=path)
        return [
            (number, {f: (raw.get(f) or "").strip() for f in fields})
            for number, raw in enumerate(reader, start=2)
        ]


def _number(raw: dict[str, str], field: str, row: int, problems: list[str], low: float, high: float) -> float:
    try:
        value = float(raw[field])
        if not low <= value <= high:
            raise ValueError
        return value
    except ValueError:
        problems.append(f"row {row}: {field} {raw[field]!r} must be a number from {low:g} to {high:g}")
        return 0.0


def read_crossings(path: Path) -> list[Crossing]:
    """The bridges and ferries of `path`; every bad row is named in one InputError."""
    rows = _read_rows(path, CROSSING_FIELDS, "crossings")
    problems: list[str] = []
    out: list[Crossing] = []
    names: set[str] = set()
    for number, raw in rows:
        before = len(problems)
        if not raw["name"]:
            problems.append(f"row {number}: name is empty")
        elif raw["name"] in names:
            problems.append(f"row {number}: name {raw['name']!r} is listed twice")
        names.add(raw["name"])
        if raw["kind"] not in CROSSING_KINDS:
            problems.append(f"row {number}: kind {raw['kind']!r} must be one of {', '.join(CROSSING_KINDS)}")
        lat_a = _number(raw, "lat_a", number, problems, -90, 90)
        lon_a = _number(raw, "lon_a", number, problems, -180, 180)
        lat_b = _number(raw, "lat_b", number, problems, -90, 90)
        lon_b = _number(raw, "lon_b", number, problems, -180, 180)
        radius = _number(raw, "radius_km", number, problems, 0, 20) if raw["radius_km"] else 0.0
        crossing = _number(raw, "crossing_min", number, problems, 0, 24 * 60)
        wait = _number(raw, "wait_min", number, problems, 0, 24 * 60) if raw["wait_min"] else 0.0
        if raw["kind"] == "ferry" and crossing <= 0:
            problems.append(f"row {number}: a ferry needs crossing_min > 0")
        if raw["hours"] and not _HOURS.match(raw["hours"]):
            problems.append(f"row {number}: hours {raw['hours']!r} must read like 06:00-22:00")
        if not raw["source"]:
            problems.append(f"row {number}: source is empty (say where the crossing is known from)")
        if len(problems) == before:
            out.append(
                Crossing(
                    number,
                    raw["name"],
                    raw["kind"],
                    Point(lon_a, lat_a),
                    Point(lon_b, lat_b),
                    radius,
                    crossing,
                    wait,
                    raw["hours"] or "00:00-24:00",
                    raw["source"],
                )
            )
    if problems:
        raise InputError("invalid crossings", source=path, problems=problems)
    return out


# ---------------------------------------------------------------- access.csv


@dataclass(frozen=True)
class AccessRule:
    row: int
    desa_code: str
    name: str
    access: str  # water | road_and_water
    source: str


def read_access(path: Path, desa_codes: Iterable[str]) -> dict[str, AccessRule]:
    """Access rules per desa code; an unknown code, a bad mode or a missing source is named with its row."""
    known = set(desa_codes)
    problems: list[str] = []
    out: dict[str, AccessRule] = {}
    for number, raw in _read_rows(path, ACCESS_FIELDS, "access"):
        code = raw["desa_code"]
        if code not in known:
            problems.append(f"row {number}: desa_code {code!r} is not a desa of this network")
        elif code in out:
            problems.append(f"row {number}: desa_code {code} is listed twice")
        if raw["access"] not in ACCESS_KINDS:
            problems.append(
                f"row {number}: access {raw['access']!r} must be one of {', '.join(ACCESS_KINDS)}"
            )
        if not raw["source"]:
            problems.append(f"row {number}: source is empty (say which report this is from)")
        if code in known and code not in out and raw["access"] in ACCESS_KINDS and raw["source"]:
            out[code] = AccessRule(number, code, raw["name"], raw["access"], raw["source"])
    if problems:
        raise InputError("invalid access rules", source=path, problems=problems)
    return out


# ---------------------------------------------------------------- water


@dataclass(frozen=True)
class Water:
    """Water that a road leg may not cross, in metres: river lines, lake polygons, and the land (sea = not land)."""

    rivers: BaseGeometry  # Mahakam line(s) and delta channels
    lakes: BaseGeometry
    land: BaseGeometry
    sea_tolerance_m: float
    pieces: tuple[BaseGeometry, ...] = ()  # the land's parts (desa polygons), searched through a tree

    def __post_init__(self) -> None:
        for geom in (self.rivers, self.lakes, self.land):
            shapely.prepare(geom)
        object.__setattr__(self, "_tree", shapely.STRtree(list(self.pieces)) if self.pieces else None)

    def sea_m(self, line: LineString) -> float:
        """Metres of the line off land (its length minus its length inside the land's pieces)."""
        if self.land.contains(line):
            return 0.0
        tree = getattr(self, "_tree", None)
        if tree is None:
            return line.difference(self.land).length
        inside = sum(line.intersection(self.pieces[int(i)]).length for i in tree.query(line, "intersects"))
        return max(line.length - inside, 0.0)

    def crossing_point(self, line: LineString) -> Point | None:
        """Where a straight road leg first meets water it may not cross, or None if it stays on dry land."""
        if (
            not self.rivers.intersects(line)
            and (self.lakes.is_empty or not self.lakes.intersects(line))
            and self.land.contains(line)
        ):
            return None
        hits = []
        river = line.intersection(self.rivers)
        if not river.is_empty:
            hits.append(river)
        lake = line.intersection(self.lakes)
        if not lake.is_empty and lake.length > 1.0:
            hits.append(lake)
        if self.sea_m(line) > self.sea_tolerance_m:
            off = line.difference(self.land)
            hits.append(off if not off.is_empty else shapely.Point(line.coords[0]))
        if not hits:
            return None
        nearest = min(hits, key=lambda g: line.project(shapely.Point(shapely.get_coordinates(g)[0])))
        return shapely.Point(shapely.get_coordinates(nearest)[0])

    def kind_of(self, line: LineString) -> str:
        """'river', 'lake', 'sea' or '' for what a straight leg crosses (the first that applies)."""
        if line.intersects(self.rivers):
            return "river"
        lake = line.intersection(self.lakes)
        if not lake.is_empty and lake.length > 1.0:
            return "lake"
        if self.sea_m(line) > self.sea_tolerance_m:
            return "sea"
        return ""


def bank_site(polygon: BaseGeometry, water: BaseGeometry, toward: Point, setback_m: float) -> Point:
    """The point of `polygon` nearest the water, on the side of the water where `toward` lies.

    `water` is the water already widened by `setback_m` (buffer it once for all desa).
    The polygon minus a `setback_m` band around the water is split into pieces (a desa may straddle a
    channel); the piece holding `toward` (else the nearest piece) gives the point nearest the water, so the
    site stands on the bank, `setback_m` inland, not in the river.
    """
    minx, miny, maxx, maxy = polygon.bounds
    margin = 2 * setback_m
    local = shapely.clip_by_rect(water, minx - margin, miny - margin, maxx + margin, maxy + margin)
    dry = polygon.difference(local)
    if dry.is_empty:
        return toward
    pieces = list(getattr(dry, "geoms", [dry]))
    piece = min(pieces, key=lambda p: (p.distance(toward), -p.area))
    inner = piece.buffer(-setback_m / 2)
    target = inner if not inner.is_empty else piece
    return shapely.ops.nearest_points(target, local.boundary if not local.is_empty else water)[0]


# ---------------------------------------------------------------- trunk roads


@dataclass(frozen=True)
class Pass:
    """A stretch of a trunk road line inside one desa: from and to metres along the line."""

    line: int
    desa: str
    start_m: float
    end_m: float

    @property
    def middle_m(self) -> float:
        return (self.start_m + self.end_m) / 2


def trunk_passes(lines: list[LineString], polygons: dict[str, BaseGeometry], min_m: float) -> list[Pass]:
    """The desa each trunk line passes through, in order along each line (stretches shorter than min_m dropped)."""
    tree = shapely.STRtree(list(polygons.values()))
    codes = list(polygons)
    out: list[Pass] = []
    for number, line in enumerate(lines):
        stretches: list[Pass] = []
        for index in sorted(tree.query(line, predicate="intersects")):
            code = codes[int(index)]
            inside = line.intersection(polygons[code])
            for part in getattr(inside, "geoms", [inside]):
                if part.geom_type != "LineString" or part.length < min_m:
                    continue
                ends = sorted(line.project(Point(c)) for c in (part.coords[0], part.coords[-1]))
                stretches.append(Pass(number, code, ends[0], ends[1]))
        stretches.sort(key=lambda p: (p.start_m, p.desa))
        out.extend(_merge_repeats(stretches))
    return out


def _merge_repeats(stretches: list[Pass]) -> list[Pass]:
    merged: list[Pass] = []
    for stretch in stretches:
        if merged and merged[-1].desa == stretch.desa:
            merged[-1] = Pass(stretch.line, stretch.desa, merged[-1].start_m, stretch.end_m)
        else:
            merged.append(stretch)
    return merged


def trunk_site(passes: list[Pass], lines: list[LineString], toward: Point) -> Point:
    """Where the trunk passes a desa nearest its representative point (`toward`)."""
    best: Point | None = None
    for p in passes:
        line = lines[p.line]
        margin = 0.2 * (p.end_m - p.start_m)  # keep off the boundary, which the neighbour shares
        piece = shapely.ops.substring(line, p.start_m + margin, p.end_m - margin)
        candidate = shapely.ops.nearest_points(piece, toward)[0]
        if best is None or candidate.distance(toward) < best.distance(toward):
            best = candidate
    assert best is not None
    return best


def nearest_index(points: np.ndarray, target: np.ndarray) -> int:
    """Index of the row of `points` (n x 2, metres) nearest `target` (first on ties)."""
    return int(np.argmin(((points - target) ** 2).sum(axis=1)))
