"""The multimodal network: warehouses, PPK, PPS and ports joined by road, river, sea and access legs.

Built from the boundary data of a region (networks/<region>/network.yaml says how), written as a GeoPackage
with layers `nodes` and `legs`, and loaded back as a `Network` of two GeoDataFrames. The network knows nothing
of vehicles or the solver; planner.paths turns it into travel matrices for a vehicle class.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
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
from pyproj import Geod, Transformer
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from planner.errors import InputError
from planner.fileio import write_with
from planner.ground import (
    AccessRule,
    Crossing,
    Pass,
    Water,
    bank_site,
    read_access,
    read_crossings,
    trunk_passes,
    trunk_site,
)
from planner.nodes import MODES

WGS84 = "EPSG:4326"
METRIC_CRS = "EPSG:32650"  # UTM 50N covers Kalimantan Timur (114-120 E)
NODE_KINDS = ("warehouse", "ppk", "pps", "port")
LEG_STATUS = ("open", "blocked")
NODE_COLUMNS = ["kind", "code", "name", "kabupaten_code", "kecamatan_code", "host", "port_type"]
LEG_COLUMNS = ["mode", "from_node", "to_node", "length_km", "status", "rapids", "direction", "origin", "note"]
# Columns of the ground (issue 11), optional when reading so that hand-made test networks need not carry them:
# road_class trunk | local (adjacency-derived, an assumption) | ferry | "" (not a road); crossing: the bridge or
# ferry of crossings.csv the leg uses; crossing_h: hours on a ferry leg (wait + crossing), 0 elsewhere.
EXTRA_LEG_COLUMNS = {"road_class": "", "crossing": "", "crossing_h": 0.0}
# site_source: why the node stands where it does; lost_roads: local road legs not built (water, access.csv).
EXTRA_NODE_COLUMNS = {"site_source": "", "lost_roads": 0}
ROAD_CLASSES = ("trunk", "local", "ferry")
MAHAKAM_JETTY, CONFIG_PORT = "Mahakam jetty", "port (network.yaml)"
MAIN_RIVER = (MAHAKAM_JETTY, CONFIG_PORT)
LAKE_JETTY = "lake jetty"  # site_source of new_jetty(..., "lake")
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
    roads: Path | None = None  # trunk road lines (become road legs of class trunk)
    rivers_detail: Path | None = (
        None  # full-resolution river lines (the Mahakam's channels are taken from it)
    )
    lakes: Path | None = None  # lake polygons with code, name
    desa_tps: Path | None = None  # TPS per desa (desa_code, tps_pemilu2024): where people live


class LakeConfig(_Config):
    shore_band_km: float = Field(0.5, gt=0)  # a desa within this distance of a lake gets a jetty on its shore
    circuity: float = Field(1.1, ge=1.0)  # boat km across a lake = geodesic km x this factor
    neighbours: int = Field(2, ge=1)  # each lake jetty links to its nearest jetties on the same lake


class RoadConfig(_Config):
    circuity: float = Field(1.35, ge=1.0)
    trunk_circuity: float = Field(1.1, ge=1.0)
    sea_tolerance_km: float = Field(0.3, ge=0)
    trunk_min_pass_km: float = Field(0.3, ge=0)


class RiverConfig(_Config):
    jetty_band_km: float = Field(1.5, gt=0)
    tributary_circuity: float = Field(1.6, ge=1.0)
    rapids_above: str | None = None
    channel_within_km: float = Field(
        15, ge=0
    )  # detail river lines this near the Mahakam line are its channels
    bank_setback_km: float = Field(0.1, gt=0)  # a riverside PPS stands this far inland from the water


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
    crossings: Path | None = None
    access: Path | None = None
    lake: LakeConfig = LakeConfig()
    ppk_capitals: dict[str, str] = {}  # kecamatan code -> desa code of its capital, where known


def network_dir(path: str | Path) -> Path:
    """The network folder for a folder, its network.yaml or its network.gpkg."""
    path = Path(path)
    return path if path.is_dir() or not path.suffix else path.parent


def load_config(path: str | Path) -> tuple[NetworkConfig, Path]:
    """network.yaml of a network folder, checked, and the folder; InputError naming the file otherwise."""
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
    """The id of a leg: `<mode>:<from node>-<to node>`, e.g. `road:pps:64.02.14.2003-ppk:64.02.14`."""
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
    water: Water | None = None
    crossings: list[Crossing] = field(default_factory=list)
    access: dict[str, AccessRule] = field(default_factory=dict)
    trunk_lines: list[LineString] = field(default_factory=list)  # metres
    passes: list[Pass] = field(default_factory=list)
    channels: list[LineString] = field(default_factory=list)  # metres
    lakes_m: list[tuple[str, Polygon]] = field(default_factory=list)
    desa_m: gpd.GeoSeries | None = None  # desa polygons in metres
    land_m: BaseGeometry | None = None  # union of the desa polygons, metres

    # ---- helpers
    def add_node(
        self,
        node_id: str,
        kind: str,
        code: str,
        name: str,
        point: Point,
        host: str,
        port_type: str = "",
        site_source: str = "",
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
            "site_source": site_source,
            "lost_roads": 0,
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
        road_class: str = "",
        crossing: str = "",
        crossing_h: float = 0.0,
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
            "road_class": road_class,
            "crossing": crossing,
            "crossing_h": round(float(crossing_h), 4),
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
            self.add_node(
                f"pps:{code}",
                "pps",
                str(code),
                row["name"],
                row["point"],
                f"pps:{code}",
                "",
                row["site_source"],
            )

    def road_legs(self) -> nx.Graph:
        """Local road legs between desa whose repaired polygons touch, unless the straight leg crosses water
        away from a listed bridge; returns the adjacency graph (of all touching pairs)."""
        polys = self.desa.reset_index()[["code", "geometry"]]
        pairs = gpd.sjoin(polys, polys, predicate="intersects")
        pairs = pairs[pairs["code_left"] < pairs["code_right"]]
        graph = nx.Graph()
        graph.add_nodes_from(self.desa.index)
        for a, b in sorted(zip(pairs["code_left"], pairs["code_right"], strict=True)):
            graph.add_edge(a, b)
            na, nb = f"pps:{a}", f"pps:{b}"
            line = LineString([self.nodes[na]["geometry"], self.nodes[nb]["geometry"]])
            allowed, bridge = self.may_cross(line)
            if not allowed:
                self.nodes[na]["lost_roads"] += 1
                self.nodes[nb]["lost_roads"] += 1
                continue
            km = _line_km(line) * self.config.road.circuity
            note = "assumed: adjacency of desa polygons, not a surveyed road"
            self.add_leg("road", na, nb, km, "adjacency", note=note, road_class="local", crossing=bridge)
        return graph

    def may_cross(self, line_wgs84: LineString) -> tuple[bool, str]:
        """(allowed, bridge name): a road line (straight or not) may cross water only near a listed bridge."""
        if self.water is None:
            return True, ""
        line_m = _to_metric(line_wgs84)
        at = self.water.crossing_point(line_m)
        if at is None:
            return True, ""
        for bridge in self.crossings:
            if bridge.kind != "bridge":
                continue
            span = _to_metric(LineString([bridge.a, bridge.b]))
            if at.distance(span.centroid) <= max(bridge.radius_km * 1000, 1.0) or line_m.distance(span) < 1.0:
                return True, bridge.name
        return False, ""

    def trunk_legs(self) -> None:
        """Road legs of class trunk along the trunk lines, between consecutive desa they pass through."""
        lines, passes = self.trunk_lines, self.passes
        circuity = self.config.road.trunk_circuity
        for p, q in zip(passes, passes[1:], strict=False):
            if p.line != q.line or p.desa == q.desa:
                continue
            line = lines[p.line]
            na, nb = f"pps:{p.desa}", f"pps:{q.desa}"
            site_a, site_b = (_to_metric(self.nodes[n]["geometry"]) for n in (na, nb))
            at_a = min(max(line.project(site_a), p.start_m), p.end_m)
            at_b = min(max(line.project(site_b), q.start_m), q.end_m)
            road = substring(line, at_a, at_b) if at_b > at_a else LineString([line.interpolate(at_a)] * 2)
            coords = [site_a.coords[0], *road.coords, site_b.coords[0]]
            geom = _to_wgs84(LineString(_dedupe(coords)))
            allowed, bridge = self.may_cross(geom)
            if not allowed:
                continue
            a, b = sorted((na, nb))
            if a != na:
                geom = geom.reverse()
            km = _line_km(geom) * circuity
            lid = leg_id("road", a, b)
            if (
                lid in self.legs
                and self.legs[lid]["road_class"] == "trunk"
                and self.legs[lid]["length_km"] <= km
            ):
                continue
            note = f"trunk road (Natural Earth 10m), geodesic x {circuity}"
            self.add_leg("road", a, b, km, "trunk", geom, note=note, road_class="trunk", crossing=bridge)

    def crossing_legs(self) -> None:
        """A road leg over each listed bridge (unless one already joins its banks) and a ferry leg per ferry."""
        for crossing in self.crossings:
            ends = [f"pps:{self.host_desa(p)}" for p in (crossing.a, crossing.b)]
            if ends[0] == ends[1]:
                continue
            a, b = sorted(ends)
            ends_pts = (crossing.a, crossing.b) if a == ends[0] else (crossing.b, crossing.a)
            geom = LineString([self.nodes[a]["geometry"], *ends_pts, self.nodes[b]["geometry"]])
            spur_km = _line_km(LineString([self.nodes[a]["geometry"], ends_pts[0]])) + _line_km(
                LineString([ends_pts[1], self.nodes[b]["geometry"]])
            )
            lid = leg_id("road", a, b)
            note = f"{crossing.kind} {crossing.name} (hours {crossing.hours}); source: {crossing.source}"
            if crossing.kind == "bridge":
                if lid in self.legs:
                    self.legs[lid]["crossing"] = crossing.name
                    continue
                km = _line_km(geom) * self.config.road.circuity
                self.add_leg(
                    "road", a, b, km, "crossing", geom, note=note, road_class="local", crossing=crossing.name
                )
            else:
                hours = crossing.hours_per_crossing + spur_km / FERRY_SPUR_KMH
                self.add_leg(
                    "road",
                    a,
                    b,
                    _line_km(geom),
                    "crossing",
                    geom,
                    note=note,
                    road_class="ferry",
                    crossing=crossing.name,
                    crossing_h=hours,
                )

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
                MAHAKAM_JETTY,
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
            self.add_node(
                node, "port", port.id, port.name, point, f"pps:{self.host_desa(point)}", "river", CONFIG_PORT
            )
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
            point = self.desa.at[code, "point"]
            self.add_node(node, "port", str(code), name, point, f"pps:{code}", "sea", "island desa site")
            ports.append(node)
        for code in coastal:
            near = shapely.ops.nearest_points(desa_m.at[code, "geometry"], coast_m)[1]
            node = f"seaport:{code}"
            name = f"Pelabuhan {self.desa.at[code, 'name']}"
            self.add_node(node, "port", str(code), name, _to_wgs84(near), f"pps:{code}", "sea", "coast")
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
            host = f"pps:{self.host_desa(point)}"
            self.add_node(node, "port", port.id, port.name, point, host, "sea", "sea port (network.yaml)")
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
        land_m = self.land_m if self.land_m is not None else shapely.union_all(list(self.desa_m.values))
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

    def channel_legs(self) -> None:
        """Jetties on the Mahakam's delta channels for desa near them that have none; legs along each channel."""
        band_m = self.config.river.jetty_band_km * 1000
        has_jetty = {n["host"] for n in self.nodes.values() if n["kind"] == "port"}
        for number, channel in enumerate(self.channels):
            position: dict[str, float] = {}
            for code in sorted(self.desa.index):
                if f"pps:{code}" in has_jetty or self.desa_m.at[code].distance(channel) > band_m:
                    continue
                site = _to_metric(self.nodes[f"pps:{code}"]["geometry"])
                at = channel.project(site)
                node = self.new_jetty(code, _to_wgs84(channel.interpolate(at)), "channel")
                position[node] = at
                has_jetty.add(f"pps:{code}")
            ordered = sorted(position, key=lambda n: (position[n], n))
            note = f"delta channel {number} (GSHHG): upstream speed both ways, tidal (assumption)"
            for a, b in zip(ordered, ordered[1:], strict=False):
                reach = substring(channel, position[a], position[b])
                geom = _to_wgs84(reach if reach.length > 0 else LineString([reach.coords[0]] * 2))
                km = max(_line_km(geom), 0.01)
                self.add_leg("river", a, b, km, "channel", geom, "up", note=note)
                self.add_leg("river", b, a, km, "channel", geom.reverse(), "up", note=note)

    def new_jetty(self, code: str, point: Point, water: str) -> str:
        """Add a river-type port for desa `code` (id jetty:<code>, or jetty:<code>:<water> if taken)."""
        node = f"jetty:{code}" if f"jetty:{code}" not in self.nodes else f"jetty:{code}:{water}"
        self.add_node(
            node,
            "port",
            str(code),
            f"Dermaga {self.desa.at[code, 'name']}",
            point,
            f"pps:{code}",
            "river",
            f"{water} jetty",
        )
        self.add_access(node)
        return node

    def lake_legs(self) -> None:
        """A jetty on the shore for every desa near a lake; each joined to its nearest jetties on that lake."""
        band_m = self.config.lake.shore_band_km * 1000
        for lake_code, lake in self.lakes_m:
            jetties = []
            for code in sorted(self.desa.index):
                if self.desa_m.at[code].distance(lake) > band_m:
                    continue
                site = _to_metric(self.nodes[f"pps:{code}"]["geometry"])
                shore = shapely.ops.nearest_points(lake.exterior, site)[0]
                jetties.append(self.new_jetty(code, _to_wgs84(shore), "lake"))
            note = f"across {lake_code}: geodesic x {self.config.lake.circuity}"
            for a, b in _near_pairs(
                [self.nodes[j]["geometry"] for j in jetties], self.config.lake.neighbours
            ):
                km = _geodesic_km(self.nodes[jetties[a]]["geometry"], self.nodes[jetties[b]]["geometry"])
                km = max(km * self.config.lake.circuity, 0.01)
                self.add_leg("river", jetties[a], jetties[b], km, "lake", direction="up", note=note)
                self.add_leg("river", jetties[b], jetties[a], km, "lake", direction="up", note=note)

    def join_water(self) -> None:
        """Join every group of river-type ports cut off from the Mahakam to it, at their nearest pair."""
        graph = nx.Graph()
        river_ports = sorted(n for n, v in self.nodes.items() if v["port_type"] == "river")
        graph.add_nodes_from(river_ports)
        graph.add_edges_from(
            (v["from_node"], v["to_node"]) for v in self.legs.values() if v["mode"] == "river"
        )
        groups = sorted(nx.connected_components(graph), key=lambda g: (-len(g), min(g)))
        if len(groups) < 2:
            return
        main = set(groups[0])
        circuity = self.config.river.tributary_circuity
        for group in groups[1:]:
            a, b = _nearest_pair(sorted(group), sorted(main), self.nodes)
            km = _geodesic_km(self.nodes[a]["geometry"], self.nodes[b]["geometry"]) * circuity
            note = f"waterway to the Mahakam at {b} (channel or tributary): geodesic x {circuity}"
            self.add_leg("river", a, b, km, "join", direction="down", note=note)
            self.add_leg("river", b, a, km, "join", direction="up", note=note)
            main |= group

    def apply_access(self) -> None:
        """Honour access.csv: a water-only desa loses its road legs; every listed desa has a jetty."""
        for code, rule in sorted(self.access.items()):
            pps = f"pps:{code}"
            if rule.access == "water":
                for lid in [
                    k
                    for k, v in self.legs.items()
                    if v["mode"] == "road" and pps in (v["from_node"], v["to_node"])
                ]:
                    other = (
                        self.legs[lid]["to_node"]
                        if self.legs[lid]["from_node"] == pps
                        else self.legs[lid]["from_node"]
                    )
                    del self.legs[lid]
                    self.nodes[pps]["lost_roads"] += 1
                    self.nodes[other]["lost_roads"] += 1
            if not any(n["host"] == pps and n["kind"] == "port" for n in self.nodes.values()):
                # a listed desa is on the water: the nearest of the Mahakam or a lake (lake villages)
                why = f"access.csv row {rule.row}: {rule.source}"
                self.tributary_jetty(code, why, (*MAIN_RIVER, LAKE_JETTY))

    def tributary_jetty(self, code: str, why: str, waters: tuple[str, ...] = MAIN_RIVER) -> None:
        """A jetty at the desa's site joined by a tributary leg to the nearest jetty whose site_source is one of
        `waters` (by default the Mahakam's)."""
        main_jetties = sorted(n for n, v in self.nodes.items() if v["site_source"] in waters)
        if not main_jetties:
            return
        rapids_at = {
            leg["from_node"] for leg in self.legs.values() if leg["mode"] == "river" and leg["rapids"]
        }
        pps = f"pps:{code}"
        here = self.nodes[pps]["geometry"]
        nearest = min(main_jetties, key=lambda j: (_geodesic_km(here, self.nodes[j]["geometry"]), j))
        node = self.new_jetty(code, here, "tributary")
        km = _geodesic_km(here, self.nodes[nearest]["geometry"]) * self.config.river.tributary_circuity
        rapids = nearest in rapids_at
        note = (
            f"tributary to {self.nodes[nearest]['site_source']} {nearest}: geodesic x "
            f"{self.config.river.tributary_circuity}; {why}"
        )
        self.add_leg("river", node, nearest, km, "tributary", direction="down", rapids=rapids, note=note)
        self.add_leg("river", nearest, node, km, "tributary", direction="up", rapids=rapids, note=note)

    def tributary_legs(self) -> None:
        """Give each group of desa joined by road to neither a warehouse nor a port a tributary jetty, at the
        desa of the group nearest a Mahakam jetty."""
        graph = nx.Graph()
        graph.add_nodes_from(f"pps:{c}" for c in self.desa.index)
        graph.add_edges_from(
            (v["from_node"], v["to_node"]) for v in self.legs.values() if v["mode"] == "road"
        )
        anchored = {n["host"] for n in self.nodes.values() if n["kind"] in ("port", "warehouse")}
        main_jetties = [
            self.nodes[n]["geometry"] for n, v in self.nodes.items() if v["site_source"] in MAIN_RIVER
        ]
        if not main_jetties:
            return
        for group in sorted(nx.connected_components(graph), key=min):
            members = sorted(m for m in group if m.startswith("pps:"))
            if not members or anchored & set(group):
                continue
            best = min(
                members,
                key=lambda m: (min(_geodesic_km(self.nodes[m]["geometry"], j) for j in main_jetties), m),
            )
            self.tributary_jetty(best.split(":", 1)[1], "cut off from every road to a warehouse or port")

    def ppk_nodes(self, tps: dict[str, int]) -> None:
        """One PPK per kecamatan: at its capital (network.yaml ppk_capitals), else at the desa with the most
        Pemilu 2024 TPS, else (no TPS file) at the desa nearest by network to the kecamatan's other desa."""
        medoid = self.medoids() if not tps else {}
        for kec_code, kec in self.kecamatan.sort_index().iterrows():
            members = sorted(self.desa.index[self.desa["parent"] == kec_code])
            if not members:
                continue
            capital = self.config.ppk_capitals.get(str(kec_code))
            if capital:
                chosen, source = capital, "capital (network.yaml ppk_capitals)"
            elif tps:
                chosen = min(members, key=lambda c: (-tps.get(c, 0), c))
                source = f"most Pemilu 2024 TPS ({tps.get(chosen, 0)})"
            else:
                chosen, source = medoid[kec_code], "network medoid"
            host = f"pps:{chosen}"
            node = f"ppk:{kec_code}"
            name = f"PPK {kec['name']} (di {self.desa.at[chosen, 'name']})"
            self.add_node(node, "ppk", str(kec_code), name, self.nodes[host]["geometry"], host, "", source)
            self.add_access(node)

    def medoids(self) -> dict[str, str]:
        """Per kecamatan, the desa with the least total network distance to the kecamatan's other desa."""
        index = {n: i for i, n in enumerate(sorted(self.nodes))}
        legs = [leg for leg in self.legs.values() if leg["status"] == "open"]
        rows = [index[leg["from_node"]] for leg in legs] + [index[leg["to_node"]] for leg in legs]
        cols = [index[leg["to_node"]] for leg in legs] + [index[leg["from_node"]] for leg in legs]
        weights = [leg["length_km"] + 1e-6 for leg in legs] * 2
        matrix = coo_matrix((weights, (rows, cols)), shape=(len(index), len(index))).tocsr()
        out = {}
        for kec_code in self.kecamatan.sort_index().index:
            members = sorted(self.desa.index[self.desa["parent"] == kec_code])
            if not members:
                continue
            ids = [index[f"pps:{c}"] for c in members]
            dist = dijkstra(matrix, directed=False, indices=ids)[:, ids]
            reachable = np.isfinite(dist).sum(axis=1)
            total = np.where(np.isfinite(dist), dist, 0).sum(axis=1)
            out[kec_code] = members[
                min(range(len(members)), key=lambda i: (-reachable[i], total[i], members[i]))
            ]
        return out


FERRY_SPUR_KMH = 30.0  # assumption: driving between a ferry's landing and the desa site on a ferry leg
_TO_METRIC = Transformer.from_crs(WGS84, METRIC_CRS, always_xy=True)
_TO_WGS84 = Transformer.from_crs(METRIC_CRS, WGS84, always_xy=True)


def _to_metric(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(_TO_METRIC.transform(xy[:, 0], xy[:, 1])))


def _dedupe(coords: list) -> list:
    out = [coords[0]]
    for c in coords[1:]:
        if c != out[-1]:
            out.append(c)
    return out if len(out) > 1 else [coords[0], coords[0]]


def _near_pairs(points: list[Point], k: int) -> list[tuple[int, int]]:
    """Index pairs joining each point to its k nearest, plus what keeps them all connected (minimum tree)."""
    n = len(points)
    if n < 2:
        return []
    xy = np.array([[p.x, p.y] for p in points])
    dist = np.array([_geodesic_km(np.repeat(xy[i : i + 1], n, axis=0), xy) for i in range(n)])
    chosen = {
        (min(i, int(j)), max(i, int(j)))
        for i in range(n)
        for j in np.argsort(dist[i], kind="stable")[1 : k + 1]
    }
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(chosen)
    if not nx.is_connected(graph):
        complete = nx.Graph()
        complete.add_weighted_edges_from((i, j, dist[i, j]) for i in range(n) for j in range(i + 1, n))
        chosen |= {(min(i, j), max(i, j)) for i, j in nx.minimum_spanning_edges(complete, data=False)}
    return sorted(chosen)


def _nearest_pair(group: list[str], others: list[str], nodes: dict[str, dict]) -> tuple[str, str]:
    best = None
    for a in group:
        for b in others:
            km = _geodesic_km(nodes[a]["geometry"], nodes[b]["geometry"])
            if best is None or (km, a, b) < best:
                best = (km, a, b)
    assert best is not None
    return best[1], best[2]


def _to_wgs84(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(_TO_WGS84.transform(xy[:, 0], xy[:, 1])))


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
    src = {name: folder / p for name, p in config.sources.model_dump().items() if p is not None}
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
    _ground(builder, src)
    overrides = read_overrides(folder / config.overrides) if config.overrides else []
    tps = _read_tps(src["desa_tps"], set(desa.index)) if "desa_tps" in src else {}
    _check_capitals(config, builder, folder / "network.yaml")

    builder.pps_nodes()
    adjacency = builder.road_legs()
    builder.trunk_legs()
    builder.crossing_legs()
    builder.warehouses()
    position = builder.river_legs()
    builder.channel_legs()
    builder.lake_legs()
    builder.sea_legs(adjacency, position)
    builder.apply_access()
    pending = _apply_overrides(builder, overrides, folder / str(config.overrides), final=False)
    builder.tributary_legs()
    builder.join_water()
    _apply_overrides(builder, pending, folder / str(config.overrides), final=True)
    builder.ppk_nodes(tps)
    return _as_network(builder.nodes, builder.legs, folder / "network.gpkg")


def _ground(builder: _Builder, src: dict[str, Path]) -> None:
    """Read the ground (trunk roads, detail rivers, lakes, crossings, access) and set each desa's site."""
    config, folder, desa = builder.config, builder.folder, builder.desa
    builder.desa_m = gpd.GeoSeries(desa.geometry, crs=WGS84).to_crs(METRIC_CRS)
    mahakam_m = _to_metric(builder.mahakam())
    channels: list[LineString] = []
    if "rivers_detail" in src:
        detail = _read_layer(src["rivers_detail"], "detail river lines").to_crs(METRIC_CRS)
        near = [
            g
            for g in detail.geometry
            if g is not None and g.distance(mahakam_m) <= config.river.channel_within_km * 1000
        ]
        near.sort(key=lambda g: -g.length)
        channels = near[1:]  # the longest is the Mahakam itself, drawn in full resolution
        river_water = shapely.union_all([mahakam_m, *near])
    else:
        river_water = mahakam_m
    builder.channels = channels
    if "lakes" in src:
        lakes = _read_layer(src["lakes"], "lakes", ["code", "name"]).to_crs(METRIC_CRS)
        builder.lakes_m = [
            (str(c), shapely.make_valid(g)) for c, g in zip(lakes["code"], lakes.geometry, strict=True)
        ]
    lake_water = shapely.union_all([g for _, g in builder.lakes_m]) if builder.lakes_m else Polygon()
    builder.land_m = shapely.union_all(list(builder.desa_m.values))
    builder.water = Water(
        river_water,
        lake_water,
        builder.land_m,
        config.road.sea_tolerance_km * 1000,
        tuple(builder.desa_m.values),
    )
    if config.crossings:
        builder.crossings = read_crossings(folder / config.crossings)
    if config.access:
        builder.access = read_access(folder / config.access, desa.index)
    if "roads" in src:
        roads = _read_layer(src["roads"], "trunk roads").to_crs(METRIC_CRS)
        builder.trunk_lines = [g for g in roads.geometry if g is not None and g.geom_type == "LineString"]
        polygons = {str(c): g for c, g in builder.desa_m.items()}
        builder.passes = trunk_passes(builder.trunk_lines, polygons, config.road.trunk_min_pass_km * 1000)
    _sites(builder, river_water, lake_water)


def _sites(builder: _Builder, river_water, lake_water) -> None:
    """Each desa's PPS site: on the bank for a desa near a river or lake, else where the trunk passes, else its
    representative point (the centroid when it lies inside, else a point inside the polygon)."""
    config, desa = builder.config, builder.desa
    setback = config.river.bank_setback_km * 1000
    by_desa: dict[str, list[Pass]] = {}
    for p in builder.passes:
        by_desa.setdefault(p.desa, []).append(p)
    river_wide, lake_wide = river_water.buffer(setback), lake_water.buffer(setback)
    for geom in (river_water, lake_water, river_wide, lake_wide):
        shapely.prepare(geom)
    points, sources = [], []
    for code in desa.index:
        poly_m = builder.desa_m.at[code]
        rep_m = _to_metric(desa.at[code, "point"])
        if poly_m.distance(river_water) <= config.river.jetty_band_km * 1000:
            site, why = bank_site(poly_m, river_wide, rep_m, setback), "river bank"
        elif not lake_water.is_empty and poly_m.distance(lake_water) <= config.lake.shore_band_km * 1000:
            site, why = bank_site(poly_m, lake_wide, rep_m, setback), "lake shore"
        elif code in by_desa:
            site, why = trunk_site(by_desa[code], builder.trunk_lines, rep_m), "trunk road"
        else:
            site, why = rep_m, "representative point"
        points.append(_to_wgs84(site))
        sources.append(why)
    desa["point"] = gpd.GeoSeries(points, index=desa.index, crs=WGS84)
    desa["site_source"] = sources


def _read_tps(path: Path, desa_codes: set[str]) -> dict[str, int]:
    """Regular TPS per desa code from a CSV with desa_code and tps_pemilu2024 (other columns ignored)."""
    if not path.is_file():
        raise InputError("TPS file not found", source=path)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [f for f in ("desa_code", "tps_pemilu2024") if f not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"TPS file lacks the column(s) {', '.join(missing)}", source=path)
        out, problems = {}, []
        for number, row in enumerate(reader, start=2):
            try:
                tps = int(row["tps_pemilu2024"])
                if tps < 0:
                    raise ValueError
            except (TypeError, ValueError):
                problems.append(
                    f"row {number}: tps_pemilu2024 {row['tps_pemilu2024']!r} is not a whole number"
                )
                continue
            if row["desa_code"] in desa_codes:
                out[row["desa_code"]] = tps
    if problems:
        raise InputError("invalid TPS file", source=path, problems=problems)
    return out


def _check_capitals(config: NetworkConfig, builder: _Builder, source: Path) -> None:
    problems = [
        f"ppk_capitals: {kec}: {code!r} is not a desa of kecamatan {kec}"
        for kec, code in sorted(config.ppk_capitals.items())
        if code not in builder.desa.index or builder.desa.at[code, "parent"] != kec
    ]
    if problems:
        raise InputError("invalid network config", source=source, problems=problems)


def _as_network(nodes: dict[str, dict], legs: dict[str, dict], source: Path | None) -> Network:
    node_frame = gpd.GeoDataFrame(list(nodes.values()), geometry="geometry", crs=WGS84)
    node_frame = node_frame.set_index("node_id").sort_index()[
        [*NODE_COLUMNS, *EXTRA_NODE_COLUMNS, "geometry"]
    ]
    leg_frame = gpd.GeoDataFrame(list(legs.values()), geometry="geometry", crs=WGS84)
    leg_frame = leg_frame.set_index("leg_id").sort_index()[[*LEG_COLUMNS, *EXTRA_LEG_COLUMNS, "geometry"]]
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
    for column, default in EXTRA_NODE_COLUMNS.items():
        if column not in nodes.columns:
            nodes[column] = default
    for column, default in EXTRA_LEG_COLUMNS.items():
        if column not in legs.columns:
            legs[column] = default
    nodes = nodes.fillna({"port_type": "", "host": "", "site_source": "", "lost_roads": 0})
    nodes = nodes.set_index("node_id").sort_index()
    nodes["lost_roads"] = nodes["lost_roads"].astype(int)
    legs = legs.fillna(
        {"direction": "", "note": "", "origin": "", "road_class": "", "crossing": "", "crossing_h": 0.0}
    )
    legs = legs.set_index("leg_id").sort_index()
    legs["rapids"] = legs["rapids"].astype(bool)
    legs["length_km"] = legs["length_km"].astype(float)
    legs["crossing_h"] = legs["crossing_h"].astype(float)
    nodes = nodes[[*NODE_COLUMNS, *EXTRA_NODE_COLUMNS, "geometry"]]
    return Network(nodes, legs[[*LEG_COLUMNS, *EXTRA_LEG_COLUMNS, "geometry"]], gpkg)


def legs_frame(network: Network) -> pd.DataFrame:
    """The network's legs as a plain table (no geometry), for CSV."""
    return pd.DataFrame(network.legs.drop(columns="geometry"))


def legs_in_kabupaten(network: Network, kabupaten: Iterable[str]) -> list[str]:
    """Every open leg (access links excepted) with an end in one of the kabupaten, by leg id."""
    codes = set(kabupaten)
    legs, nodes = network.legs, network.nodes
    kab = nodes["kabupaten_code"].astype(str)
    inside = legs["from_node"].map(kab).isin(codes) | legs["to_node"].map(kab).isin(codes)
    chosen = legs[inside & (legs["mode"] != "access") & (legs["status"] == "open")]
    return sorted(chosen.index)
