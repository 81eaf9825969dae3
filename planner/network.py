"""The multimodal network: warehouses, PPK, PPS and ports joined by road, river, sea and access legs.

Built from the boundary data of a region (networks/<region>/network.yaml says how), written as a GeoPackage
with layers `nodes` and `legs`, and loaded back as a `Network` of two GeoDataFrames. The network knows nothing
of vehicles or the solver; planner.paths turns it into travel matrices for a vehicle class.
"""

from __future__ import annotations

import contextlib
import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyogrio
import shapely
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pyproj import Geod
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import LineString, Point
from shapely.ops import substring

from planner.errors import InputError
from planner.fileio import write_with

WGS84 = "EPSG:4326"
METRIC_CRS = "EPSG:32650"  # UTM 50N covers Kalimantan Timur (114-120 E)
MODES = ("road", "river", "sea", "access")
NODE_KINDS = ("warehouse", "ppk", "pps", "port")
LEG_STATUS = ("open", "blocked")
NODE_COLUMNS = ["kind", "code", "name", "kabupaten_code", "kecamatan_code", "host", "port_type"]
LEG_COLUMNS = ["mode", "from_node", "to_node", "length_km", "status", "rapids", "direction", "origin", "note"]
GPKG_DATE = "2024-11-23T00:00:00Z"  # fixed so that the same inputs give the same GeoPackage bytes
_GEOD = Geod(ellps="WGS84")


# ---------------------------------------------------------------- configuration


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sources(_Config):
    kabupaten: Path
    kecamatan: Path
    desa: Path
    rivers: Path
    coastline: Path


class RoadConfig(_Config):
    circuity: float = Field(1.35, ge=1.0)


class RiverConfig(_Config):
    jetty_band_km: float = Field(1.5, gt=0)
    tributary_circuity: float = Field(1.6, ge=1.0)
    rapids_above: str | None = None


class SeaConfig(_Config):
    coast_band_km: float = Field(1.0, gt=0)
    circuity: float = Field(1.15, ge=1.0)
    neighbours: int = Field(4, ge=1)
    max_leg_km: float = Field(250, gt=0)
    max_land_share: float = Field(0.15, ge=0, le=1)


class WarehouseConfig(_Config):
    kabupaten: str
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class PortConfig(_Config):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    type: Literal["river", "sea"]
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    snap: bool = True


class NetworkConfig(_Config):
    name: str
    province_code: str
    sources: Sources
    overrides: Path | None = None
    road: RoadConfig = RoadConfig()
    river: RiverConfig = RiverConfig()
    sea: SeaConfig = SeaConfig()
    warehouses: list[WarehouseConfig]
    ports: list[PortConfig] = []


def network_dir(path: str | Path) -> Path:
    """The network folder for a folder, its network.yaml or its network.gpkg."""
    path = Path(path)
    return path if path.is_dir() or not path.suffix else path.parent


def load_config(path: str | Path) -> tuple[NetworkConfig, Path]:
    folder = network_dir(path)
    config_file = folder / "network.yaml"
    if not config_file.is_file():
        raise InputError(
            "network config not found (expected network.yaml in the network folder)", source=config_file
        )
    try:
        raw = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        config = NetworkConfig.model_validate(raw)
    except yaml.YAMLError as err:
        raise InputError(f"not valid YAML ({err})", source=config_file) from None
    except ValidationError as err:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise InputError("invalid network config", source=config_file, problems=problems) from None
    return config, folder


# ---------------------------------------------------------------- the network


@dataclass(frozen=True)
class Network:
    """Nodes and legs of a region. `nodes` is indexed by node_id, `legs` by leg_id; both in EPSG:4326."""

    nodes: gpd.GeoDataFrame
    legs: gpd.GeoDataFrame
    source: Path | None = None

    def with_status(self, leg_ids: Iterable[str], status: str) -> Network:
        """A copy with the given legs set to `open` or `blocked`; an unknown leg id is an InputError."""
        if status not in LEG_STATUS:
            raise ValueError(f"status must be one of {LEG_STATUS}")
        leg_ids = list(leg_ids)
        unknown = [leg for leg in leg_ids if leg not in self.legs.index]
        if unknown:
            raise InputError(
                "unknown leg id" + ("s" if len(unknown) > 1 else ""),
                source=self.source,
                problems=[f"{leg}: not a leg of this network" for leg in unknown],
            )
        legs = self.legs.copy()
        legs.loc[leg_ids, "status"] = status
        return replace(self, legs=legs)

    def blocked(self, leg_ids: Iterable[str]) -> Network:
        return self.with_status(leg_ids, "blocked")

    def unblocked(self, leg_ids: Iterable[str]) -> Network:
        return self.with_status(leg_ids, "open")

    def nodes_of_kind(self, kind: str) -> gpd.GeoDataFrame:
        return self.nodes[self.nodes["kind"] == kind]

    def warehouse_of(self, kabupaten_code: str) -> str:
        return f"wh:{kabupaten_code}"


def leg_id(mode: str, from_node: str, to_node: str) -> str:
    return f"{mode}:{from_node}-{to_node}"


# ---------------------------------------------------------------- reading sources


def _read_layer(path: Path, what: str, required: Iterable[str] = ()) -> gpd.GeoDataFrame:
    if not path.is_file():
        raise InputError(f"{what} file not found", source=path)
    try:
        frame = gpd.read_file(path)
    except Exception as err:  # GDAL raises several types for a malformed file
        raise InputError(f"cannot read {what} ({str(err).splitlines()[0]})", source=path) from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(f"{what} lacks the field(s) {', '.join(missing)}", source=path)
    if frame.empty:
        raise InputError(f"{what} has no features", source=path)
    if frame.crs is None:
        frame = frame.set_crs(WGS84)
    return frame.to_crs(WGS84)


def _repaired(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    frame = frame.copy()
    frame["geometry"] = shapely.make_valid(frame.geometry.values)
    return frame


def _geodesic_km(a: Point | np.ndarray, b: Point | np.ndarray) -> float | np.ndarray:
    if isinstance(a, Point):
        return _GEOD.inv(a.x, a.y, b.x, b.y)[2] / 1000.0
    return _GEOD.inv(a[:, 0], a[:, 1], b[:, 0], b[:, 1])[2] / 1000.0


def _line_km(line: LineString) -> float:
    return _GEOD.geometry_length(line) / 1000.0


def _round(km: float) -> float:
    return round(float(km), 3)


# ---------------------------------------------------------------- building


@dataclass
class _Builder:
    config: NetworkConfig
    folder: Path
    desa: gpd.GeoDataFrame  # index desa code, polygons (WGS84, repaired), columns name, parent, point
    kecamatan: gpd.GeoDataFrame
    rivers: gpd.GeoDataFrame
    coastline: gpd.GeoDataFrame
    nodes: dict[str, dict]
    legs: dict[str, dict]

    # ---- helpers
    def add_node(
        self, node_id: str, kind: str, code: str, name: str, point: Point, host: str, port_type: str = ""
    ):
        desa_code = host.split(":", 1)[1]
        kec = self.desa.at[desa_code, "parent"]
        kab = code if kind == "warehouse" else kec[:5]
        self.nodes[node_id] = {
            "node_id": node_id,
            "kind": kind,
            "code": code,
            "name": name,
            "kabupaten_code": kab,
            "kecamatan_code": kec,
            "host": host,
            "port_type": port_type,
            "geometry": Point(round(point.x, 6), round(point.y, 6)),
        }

    def add_leg(
        self,
        mode: str,
        a: str,
        b: str,
        length_km: float,
        origin: str,
        geometry: LineString | None = None,
        direction: str = "",
        rapids: bool = False,
        note: str = "",
    ) -> str:
        lid = leg_id(mode, a, b)
        if geometry is None:
            geometry = LineString([self.nodes[a]["geometry"], self.nodes[b]["geometry"]])
        self.legs[lid] = {
            "leg_id": lid,
            "mode": mode,
            "from_node": a,
            "to_node": b,
            "length_km": _round(length_km),
            "status": "open",
            "rapids": bool(rapids),
            "direction": direction,
            "origin": origin,
            "note": note,
            "geometry": shapely.set_precision(geometry, 1e-6),
        }
        return lid

    def host_desa(self, point: Point) -> str:
        hits = self.desa.index[self.desa.contains(point)]
        if len(hits):
            return str(sorted(hits)[0])
        distances = self.desa.to_crs(METRIC_CRS).distance(
            gpd.GeoSeries([point], crs=WGS84).to_crs(METRIC_CRS)[0]
        )
        return str(distances.idxmin())

    def add_access(self, node_id: str) -> None:
        host = self.nodes[node_id]["host"]
        a, b = self.nodes[node_id]["geometry"], self.nodes[host]["geometry"]
        self.add_leg("access", node_id, host, _geodesic_km(a, b), "access")

    # ---- steps
    def pps_nodes(self) -> None:
        for code, row in self.desa.iterrows():
            self.add_node(f"pps:{code}", "pps", str(code), row["name"], row["point"], f"pps:{code}")

    def road_legs(self) -> nx.Graph:
        """Road legs between desa whose repaired polygons touch; returns the adjacency graph."""
        polys = self.desa.reset_index()[["code", "geometry"]]
        pairs = gpd.sjoin(polys, polys, predicate="intersects")
        pairs = pairs[pairs["code_left"] < pairs["code_right"]]
        graph = nx.Graph()
        graph.add_nodes_from(self.desa.index)
        for a, b in sorted(zip(pairs["code_left"], pairs["code_right"], strict=True)):
            graph.add_edge(a, b)
            na, nb = f"pps:{a}", f"pps:{b}"
            km = (
                _geodesic_km(self.nodes[na]["geometry"], self.nodes[nb]["geometry"])
                * self.config.road.circuity
            )
            self.add_leg("road", na, nb, km, "adjacency")
        return graph

    def warehouses(self) -> None:
        for wh in self.config.warehouses:
            point = Point(wh.lon, wh.lat)
            host = self.host_desa(point)
            self.add_node(f"wh:{wh.kabupaten}", "warehouse", wh.kabupaten, wh.name, point, f"pps:{host}")
            self.add_access(f"wh:{wh.kabupaten}")

    def mahakam(self) -> LineString:
        lines = [g for g in self.rivers.geometry if g is not None and not g.is_empty]
        merged = shapely.line_merge(shapely.union_all(lines))
        if merged.geom_type != "LineString":
            merged = max(merged.geoms, key=lambda g: g.length)
        return merged

    def river_legs(self) -> dict[str, float]:
        """Jetties on the Mahakam for riverside desa and named river ports; legs between consecutive jetties.

        Returns each jetty's position along the line (metres from the upstream end).
        """
        line = self.mahakam()
        line_m = gpd.GeoSeries([line], crs=WGS84).to_crs(METRIC_CRS)[0]
        band_m = self.config.river.jetty_band_km * 1000
        desa_m = self.desa.to_crs(METRIC_CRS)
        points_m = gpd.GeoSeries(self.desa["point"], crs=WGS84).to_crs(METRIC_CRS)
        position: dict[str, float] = {}
        near = desa_m.index[desa_m.distance(line_m) <= band_m]
        for code in sorted(near):
            reach = line_m.intersection(desa_m.at[code, "geometry"].buffer(band_m))
            if reach.is_empty:
                continue
            at = line_m.project(shapely.ops.nearest_points(reach, points_m[code])[0])
            node = f"jetty:{code}"
            point = _to_wgs84(line_m.interpolate(at))
            self.add_node(
                node,
                "port",
                str(code),
                f"Dermaga {self.desa.at[code, 'name']}",
                point,
                f"pps:{code}",
                "river",
            )
            self.add_access(node)
            position[node] = at
        for port in self.config.ports:
            if port.type != "river":
                continue
            raw = gpd.GeoSeries([Point(port.lon, port.lat)], crs=WGS84).to_crs(METRIC_CRS)[0]
            at = line_m.project(raw)
            point = _to_wgs84(line_m.interpolate(at))
            node = f"port:{port.id}"
            self.add_node(node, "port", port.id, port.name, point, f"pps:{self.host_desa(point)}", "river")
            self.add_access(node)
            position[node] = at
        rapids_limit = (
            position.get(self.config.river.rapids_above) if self.config.river.rapids_above else None
        )
        if self.config.river.rapids_above and rapids_limit is None:
            raise InputError(
                f"river.rapids_above: {self.config.river.rapids_above} is not a river port",
                source=self.folder / "network.yaml",
            )
        ordered = sorted(position, key=lambda n: (position[n], n))
        for up, down in zip(ordered, ordered[1:], strict=False):
            a, b = position[up], position[down]
            reach = (
                substring(line_m, a, b)
                if b > a
                else LineString([line_m.interpolate(a), line_m.interpolate(b)])
            )
            geom = _to_wgs84(reach)
            km = max(_line_km(geom), 0.01)
            rapids = rapids_limit is not None and b <= rapids_limit
            self.add_leg("river", up, down, km, "mahakam", geom, "down", rapids)
            self.add_leg("river", down, up, km, "mahakam", geom.reverse(), "up", rapids)
        return position

    def sea_legs(self, adjacency: nx.Graph, river_position: dict[str, float]) -> None:
        cfg = self.config.sea
        mainland = max(nx.connected_components(adjacency), key=len)
        islands = sorted(set(self.desa.index) - mainland)
        coast_m = gpd.GeoSeries([shapely.union_all(list(self.coastline.geometry))], crs=WGS84).to_crs(
            METRIC_CRS
        )[0]
        desa_m = self.desa.to_crs(METRIC_CRS)
        coastal = sorted(
            set(desa_m.index[desa_m.distance(coast_m) <= cfg.coast_band_km * 1000]) - set(islands)
        )
        ports: list[str] = []
        for code in islands:
            node = f"seaport:{code}"
            name = f"Pelabuhan {self.desa.at[code, 'name']}"
            self.add_node(node, "port", str(code), name, self.desa.at[code, "point"], f"pps:{code}", "sea")
            ports.append(node)
        for code in coastal:
            near = shapely.ops.nearest_points(desa_m.at[code, "geometry"], coast_m)[1]
            node = f"seaport:{code}"
            name = f"Pelabuhan {self.desa.at[code, 'name']}"
            self.add_node(node, "port", str(code), name, _to_wgs84(near), f"pps:{code}", "sea")
            ports.append(node)
        free_ends: set[str] = set()
        for port in self.config.ports:
            if port.type != "sea":
                continue
            point = Point(port.lon, port.lat)
            if port.snap:
                raw = gpd.GeoSeries([point], crs=WGS84).to_crs(METRIC_CRS)[0]
                point = _to_wgs84(shapely.ops.nearest_points(raw, coast_m)[1])
            else:
                free_ends.add(f"port:{port.id}")
            node = f"port:{port.id}"
            self.add_node(node, "port", port.id, port.name, point, f"pps:{self.host_desa(point)}", "sea")
            ports.append(node)
        for node in ports:
            self.add_access(node)
        self._link_sea_ports(sorted(ports), free_ends)
        if river_position:
            mouth = max(river_position, key=lambda n: (river_position[n], n))
            self._link_nearest(mouth, sorted(ports), 2, "river mouth to sea")

    def _link_sea_ports(self, ports: list[str], free_ends: set[str]) -> None:
        cfg = self.config.sea
        xy = np.array([[self.nodes[p]["geometry"].x, self.nodes[p]["geometry"].y] for p in ports])
        n = len(ports)
        dist = np.zeros((n, n))
        for i in range(n):
            dist[i] = _geodesic_km(np.repeat(xy[i : i + 1], n, axis=0), xy)
        land_m = shapely.union_all(list(self.desa.to_crs(METRIC_CRS).geometry))
        chosen: set[tuple[int, int]] = set()
        for i in range(n):
            for j in np.argsort(dist[i], kind="stable")[1 : cfg.neighbours + 1]:
                if dist[i, j] > cfg.max_leg_km:
                    continue
                pair = (min(i, int(j)), max(i, int(j)))
                if pair in chosen:
                    continue
                if ports[i] not in free_ends and ports[j] not in free_ends:
                    line_m = gpd.GeoSeries([LineString([xy[i], xy[j]])], crs=WGS84).to_crs(METRIC_CRS)[0]
                    if (
                        line_m.length > 0
                        and line_m.intersection(land_m).length / line_m.length > cfg.max_land_share
                    ):
                        continue
                chosen.add(pair)
        graph = nx.Graph()
        graph.add_nodes_from(range(n))
        graph.add_edges_from(chosen)
        if not nx.is_connected(graph):
            complete = nx.Graph()
            complete.add_weighted_edges_from((i, j, dist[i, j]) for i in range(n) for j in range(i + 1, n))
            for i, j in nx.minimum_spanning_edges(complete, data=False):
                graph.add_edge(i, j)
                chosen.add((min(i, j), max(i, j)))
        for i, j in sorted(chosen, key=lambda p: (ports[p[0]], ports[p[1]])):
            a, b = sorted((ports[i], ports[j]))
            self.add_leg("sea", a, b, dist[i, j] * cfg.circuity, "coast")

    def _link_nearest(self, node: str, candidates: list[str], k: int, note: str) -> None:
        here = self.nodes[node]["geometry"]
        ranked = sorted(candidates, key=lambda c: (_geodesic_km(here, self.nodes[c]["geometry"]), c))
        for other in ranked[:k]:
            km = _geodesic_km(here, self.nodes[other]["geometry"]) * self.config.sea.circuity
            a, b = sorted((node, other))
            self.add_leg("sea", a, b, km, "coast", note=note)

    def tributary_legs(self) -> None:
        """Link each desa left with no road, jetty or sea port to the nearest Mahakam jetty by a tributary leg."""
        served = {leg["from_node"] for leg in self.legs.values() if leg["mode"] == "road"}
        served |= {leg["to_node"] for leg in self.legs.values() if leg["mode"] == "road"}
        served |= {n["host"] for n in self.nodes.values() if n["kind"] == "port"}
        main_jetties = sorted(
            n for n, v in self.nodes.items() if v["port_type"] == "river" and not n.startswith("jetty:trib")
        )
        if not main_jetties:
            return
        rapids_at = {
            leg["from_node"] for leg in self.legs.values() if leg["mode"] == "river" and leg["rapids"]
        }
        for code in sorted(self.desa.index):
            pps = f"pps:{code}"
            if pps in served:
                continue
            here = self.nodes[pps]["geometry"]
            nearest = min(main_jetties, key=lambda j: (_geodesic_km(here, self.nodes[j]["geometry"]), j))
            node = f"jetty:{code}"
            self.add_node(
                node, "port", str(code), f"Dermaga {self.desa.at[code, 'name']}", here, pps, "river"
            )
            self.add_access(node)
            km = _geodesic_km(here, self.nodes[nearest]["geometry"]) * self.config.river.tributary_circuity
            rapids = nearest in rapids_at
            note = f"tributary to the Mahakam at {nearest}: geodesic x {self.config.river.tributary_circuity}"
            self.add_leg("river", node, nearest, km, "tributary", direction="down", rapids=rapids, note=note)
            self.add_leg("river", nearest, node, km, "tributary", direction="up", rapids=rapids, note=note)

    def ppk_nodes(self) -> None:
        """One PPK per kecamatan, at the desa with the least total network distance to the kecamatan's other desa."""
        index = {n: i for i, n in enumerate(sorted(self.nodes))}
        legs = [leg for leg in self.legs.values() if leg["status"] == "open"]
        rows = [index[leg["from_node"]] for leg in legs] + [index[leg["to_node"]] for leg in legs]
        cols = [index[leg["to_node"]] for leg in legs] + [index[leg["from_node"]] for leg in legs]
        weights = [leg["length_km"] + 1e-6 for leg in legs] * 2
        matrix = coo_matrix((weights, (rows, cols)), shape=(len(index), len(index))).tocsr()
        for kec_code, kec in self.kecamatan.sort_index().iterrows():
            members = sorted(self.desa.index[self.desa["parent"] == kec_code])
            if not members:
                continue
            ids = [index[f"pps:{c}"] for c in members]
            dist = dijkstra(matrix, directed=False, indices=ids)[:, ids]
            reachable = np.isfinite(dist).sum(axis=1)
            total = np.where(np.isfinite(dist), dist, 0).sum(axis=1)
            best = min(range(len(members)), key=lambda i: (-reachable[i], total[i], members[i]))
            host = f"pps:{members[best]}"
            node = f"ppk:{kec_code}"
            name = f"PPK {kec['name']} (di {self.desa.at[members[best], 'name']})"
            self.add_node(node, "ppk", str(kec_code), name, self.nodes[host]["geometry"], host)
            self.add_access(node)


def _to_wgs84(geom):
    return gpd.GeoSeries([geom], crs=METRIC_CRS).to_crs(WGS84)[0]


# ---------------------------------------------------------------- overrides


@dataclass(frozen=True)
class Override:
    row: int
    action: str
    target: str
    mode: str
    from_node: str
    to_node: str
    length_km: str
    note: str


OVERRIDE_ACTIONS = ("close", "open", "remove", "add", "set_mode", "no_road")
OVERRIDE_FIELDS = ("action", "target", "mode", "from_node", "to_node", "length_km", "note")


# Bounds of an overrides file: Kaltim's has a few dozen rows, and its longest leg (Balikpapan to the
# Berau islands by sea) is under 700 km; a longer leg or a bigger file is a typo, not a correction.
MAX_OVERRIDE_KM = 3_000.0
MAX_OVERRIDE_ROWS = 100_000
MAX_OVERRIDE_BYTES = 20_000_000
MAX_SHOWN_PROBLEMS = 50  # an officer fixes the first ones and runs again


def _override_rows(path: Path) -> list[Override]:
    """The rows of an overrides CSV (UTF-8, with or without a BOM); InputError for a file that is not one."""
    if not path.is_file():
        raise InputError("overrides file not found", source=path)
    if path.stat().st_size > MAX_OVERRIDE_BYTES:
        raise InputError(f"overrides file is larger than {MAX_OVERRIDE_BYTES:,} bytes", source=path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [(h or "").strip() for h in (reader.fieldnames or [])]
            missing = [f for f in ("action", "target") if f not in header]
            if missing:
                raise InputError(f"missing column(s) {', '.join(missing)}", source=path)
            reader.fieldnames = header
            rows = []
            for number, raw in enumerate(reader, start=2):
                if number - 1 > MAX_OVERRIDE_ROWS:
                    raise InputError(f"more than {MAX_OVERRIDE_ROWS:,} overrides", source=path)
                values = {f: raw.get(f) if isinstance(raw.get(f), str) else "" for f in OVERRIDE_FIELDS}
                rows.append(Override(number, **{f: v.strip() for f, v in values.items()}))
    except (UnicodeDecodeError, csv.Error) as err:
        reason = "not UTF-8 text" if isinstance(err, UnicodeDecodeError) else str(err)[:80]
        raise InputError(f"cannot read the overrides as CSV ({reason})", source=path) from None
    return rows


def read_overrides(path: Path) -> list[Override]:
    """Corrections to the built network (overrides.csv), each checked; every bad row named at once."""
    rows = _override_rows(path)
    problems = []
    for o in rows:
        if o.action not in OVERRIDE_ACTIONS:
            problems.append(
                f"row {o.row}: action {o.action[:40]!r} must be one of {', '.join(OVERRIDE_ACTIONS)}"
            )
        if o.action in ("add", "set_mode") and o.mode not in MODES:
            problems.append(f"row {o.row}: mode {o.mode[:40]!r} must be one of {', '.join(MODES)}")
        if o.action == "add" and not (o.from_node and o.to_node):
            problems.append(f"row {o.row}: 'add' needs from_node and to_node")
        if o.action == "add" and o.from_node and o.from_node == o.to_node:
            problems.append(f"row {o.row}: 'add' from {o.from_node[:60]!r} to itself: a leg joins two places")
        if o.length_km:
            try:
                if not 0 < float(o.length_km) <= MAX_OVERRIDE_KM:  # also false for nan
                    raise ValueError
            except ValueError:
                problems.append(
                    f"row {o.row}: length_km {o.length_km[:30]!r} must be a number above 0 and at most "
                    f"{MAX_OVERRIDE_KM:,.0f}"
                )
    if problems:
        shown = problems[:MAX_SHOWN_PROBLEMS]
        if len(problems) > MAX_SHOWN_PROBLEMS:
            shown.append(f"and {len(problems) - MAX_SHOWN_PROBLEMS:,} more")
        raise InputError("invalid overrides", source=path, problems=shown)
    return rows


def _apply_overrides(builder: _Builder, overrides: list[Override], path: Path, final: bool) -> list[Override]:
    """Apply the overrides whose target exists; return the rest (they may target legs built later)."""
    pending, problems = [], []
    for o in overrides:
        if o.action == "no_road":
            if o.target not in builder.kecamatan.index:
                problems.append(f"row {o.row}: target {o.target!r} is not a kecamatan code")
                continue
            desa = {f"pps:{c}" for c in builder.desa.index[builder.desa["parent"] == o.target]}
            for lid in [k for k, v in builder.legs.items() if v["mode"] == "road"]:
                leg = builder.legs[lid]
                if leg["from_node"] in desa or leg["to_node"] in desa:
                    del builder.legs[lid]
        elif o.action == "add":
            unknown = [n for n in (o.from_node, o.to_node) if n not in builder.nodes]
            if unknown:
                problems.append(f"row {o.row}: unknown node(s) {', '.join(unknown)}")
                continue
            a, b = builder.nodes[o.from_node]["geometry"], builder.nodes[o.to_node]["geometry"]
            km = float(o.length_km) if o.length_km else _geodesic_km(a, b) * builder.config.road.circuity
            builder.add_leg(o.mode, o.from_node, o.to_node, km, "override", note=o.note)
        elif o.target not in builder.legs:
            if final:
                problems.append(f"row {o.row}: unknown leg id {o.target!r}")
            else:
                pending.append(o)
        elif o.action == "remove":
            del builder.legs[o.target]
        elif o.action in ("close", "open"):
            builder.legs[o.target]["status"] = "blocked" if o.action == "close" else "open"
            builder.legs[o.target]["note"] = o.note
        elif o.action == "set_mode":
            leg = builder.legs.pop(o.target)
            leg.update(
                mode=o.mode, leg_id=leg_id(o.mode, leg["from_node"], leg["to_node"]), origin="override"
            )
            builder.legs[leg["leg_id"]] = leg
    if problems:
        raise InputError("overrides do not fit the network", source=path, problems=problems)
    return pending


# ---------------------------------------------------------------- public API


def build_network(path: str | Path) -> Network:
    """Build the network of a region folder from its network.yaml, sources and overrides (no file written)."""
    config, folder = load_config(path)
    src = {name: folder / p for name, p in config.sources.model_dump().items()}
    kab = _read_layer(src["kabupaten"], "kabupaten boundaries", ["code", "name"])
    kec = _repaired(_read_layer(src["kecamatan"], "kecamatan boundaries", ["code", "name", "parent"]))
    desa = _repaired(_read_layer(src["desa"], "desa boundaries", ["code", "name", "parent", "lat", "lon"]))
    rivers = _read_layer(src["rivers"], "river lines")
    coastline = _read_layer(src["coastline"], "coastline")
    codes = set(kab["code"])
    missing_wh = sorted(codes - {w.kabupaten for w in config.warehouses})
    if missing_wh:
        raise InputError(
            "every kabupaten needs a warehouse",
            source=folder / "network.yaml",
            problems=[f"warehouses: {missing_wh}"],
        )
    desa = desa.set_index("code").sort_index()
    centroid = gpd.GeoSeries(gpd.points_from_xy(desa["lon"], desa["lat"]), index=desa.index, crs=WGS84)
    inside = centroid.within(desa.geometry)
    desa["point"] = centroid.where(inside, desa.geometry.representative_point())
    builder = _Builder(config, folder, desa, kec.set_index("code"), rivers, coastline, {}, {})
    overrides = read_overrides(folder / config.overrides) if config.overrides else []

    builder.pps_nodes()
    adjacency = builder.road_legs()
    builder.warehouses()
    position = builder.river_legs()
    builder.sea_legs(adjacency, position)
    pending = _apply_overrides(builder, overrides, folder / str(config.overrides), final=False)
    builder.tributary_legs()
    _apply_overrides(builder, pending, folder / str(config.overrides), final=True)
    builder.ppk_nodes()
    return _as_network(builder.nodes, builder.legs, folder / "network.gpkg")


def _as_network(nodes: dict[str, dict], legs: dict[str, dict], source: Path | None) -> Network:
    node_frame = gpd.GeoDataFrame(list(nodes.values()), geometry="geometry", crs=WGS84)
    node_frame = node_frame.set_index("node_id").sort_index()[[*NODE_COLUMNS, "geometry"]]
    leg_frame = gpd.GeoDataFrame(list(legs.values()), geometry="geometry", crs=WGS84)
    leg_frame = leg_frame.set_index("leg_id").sort_index()[[*LEG_COLUMNS, "geometry"]]
    return Network(node_frame, leg_frame, source)


@contextlib.contextmanager
def _fixed_gpkg_timestamps() -> Iterator[None]:
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_DATE})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


def write_network(network: Network, path: str | Path) -> Path:
    """Write layers `nodes` and `legs` to a GeoPackage; the same network always gives the same bytes."""

    def writer(tmp: Path) -> None:
        with _fixed_gpkg_timestamps():
            network.nodes.reset_index().to_file(tmp, layer="nodes", driver="GPKG", engine="pyogrio")
            network.legs.reset_index().to_file(tmp, layer="legs", driver="GPKG", engine="pyogrio")

    return write_with(path, writer)


def load_network(path: str | Path) -> Network:
    """Load a built network from a network folder or its network.gpkg."""
    path = Path(path)
    gpkg = path if path.suffix == ".gpkg" else network_dir(path) / "network.gpkg"
    if not gpkg.is_file():
        raise InputError(
            f"network not built yet: run `planner network build {network_dir(path)}`", source=gpkg
        )
    try:
        nodes = gpd.read_file(gpkg, layer="nodes", engine="pyogrio")
        legs = gpd.read_file(gpkg, layer="legs", engine="pyogrio")
    except Exception as err:
        raise InputError(f"cannot read the network ({str(err).splitlines()[0]})", source=gpkg) from None
    missing = [c for c in ["node_id", *NODE_COLUMNS] if c not in nodes.columns]
    missing += [c for c in ["leg_id", *LEG_COLUMNS] if c not in legs.columns]
    if missing:
        raise InputError(f"network file lacks field(s) {', '.join(missing)}", source=gpkg)
    nodes = nodes.fillna({"port_type": "", "host": ""}).set_index("node_id").sort_index()
    legs = legs.fillna({"direction": "", "note": "", "origin": ""}).set_index("leg_id").sort_index()
    legs["rapids"] = legs["rapids"].astype(bool)
    legs["length_km"] = legs["length_km"].astype(float)
    return Network(nodes[[*NODE_COLUMNS, "geometry"]], legs[[*LEG_COLUMNS, "geometry"]], gpkg)


# ---------------------------------------------------------------- checks


@dataclass(frozen=True)
class NetworkReport:
    nodes_per_kind: dict[str, int]
    legs_per_mode: dict[str, int]
    km_per_mode: dict[str, float]
    blocked_legs: int
    unreachable: list[tuple[str, str, str, str]]  # (pps node id, name, warehouse, why)


def unreachable_pps(network: Network) -> list[tuple[str, str, str, str]]:
    """PPS that their kabupaten warehouse cannot reach, or cannot come back from, over open legs of any mode."""
    from planner.paths import ALL_MODES_SPEEDS, shortest_paths

    pps = network.nodes_of_kind("pps")
    warehouses = sorted(network.nodes_of_kind("warehouse").index)
    outward = shortest_paths(network, ALL_MODES_SPEEDS, sources=warehouses)
    back = shortest_paths(network, ALL_MODES_SPEEDS, sources=sorted(pps.index))
    out = []
    for node_id, row in pps.iterrows():
        wh = network.warehouse_of(row["kabupaten_code"])
        if wh not in outward.source_index or not math.isfinite(outward.hours_between(wh, node_id)):
            why = "no open leg leads there"
        elif not math.isfinite(back.hours_between(node_id, wh)):
            why = "no open leg leads back"
        else:
            continue
        out.append((str(node_id), str(row["name"]), wh, why))
    return out


def check_network(network: Network) -> NetworkReport:
    kinds = network.nodes["kind"].value_counts()
    open_legs = network.legs[network.legs["status"] == "open"]
    by_mode = network.legs.groupby("mode")
    return NetworkReport(
        nodes_per_kind={k: int(kinds.get(k, 0)) for k in NODE_KINDS},
        legs_per_mode={m: int(by_mode.size().get(m, 0)) for m in MODES},
        km_per_mode={m: round(float(open_legs[open_legs["mode"] == m]["length_km"].sum()), 1) for m in MODES},
        blocked_legs=int((network.legs["status"] == "blocked").sum()),
        unreachable=unreachable_pps(network),
    )


def legs_frame(network: Network) -> pd.DataFrame:
    return pd.DataFrame(network.legs.drop(columns="geometry"))
