"""Route maps as one self-contained HTML file (folium + Leaflet inlined) that opens offline on any phone.

Two audiences:
- `kpu`: everything: boundaries, road / river / sea / access legs, blocked legs, every vehicle's route,
  warehouses, PPK, PPS, ports and unserved stops.
- `lanal`: what the navy needs: sea legs (open and blocked), the ships (routes that use a sea leg), sea ports
  and the coastal and island stops the ships serve; the kabupaten boundaries stay as the offline basemap.

The page loads nothing from the internet: Leaflet's script and stylesheet come from the installed
`django-js-lib-leaflet` package and are inlined, its images as data URIs; folium's CDN assets are dropped.
An online tile layer is offered but off. All data reach the page as JSON inside one script; the page builds
popups with `textContent`, so a desa named `<script>...</script>` shows as text. Layer names and the legend,
which Leaflet inserts as HTML, are escaped here.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.template import Template
from shapely.geometry import LineString, mapping

from planner.errors import InputError
from planner.fileio import write_text
from planner.plan import Plan, Route, Stop
from planner.report import ItemInfo, check_plan_references, item_infos, node_info_table

Audience = Literal["kpu", "lanal"]
AUDIENCES: tuple[str, ...] = ("kpu", "lanal")
COORDINATE_DECIMALS = 5  # about 1 m: plenty for a route map, and it keeps the file small
BOUNDARY_TOLERANCE_DEG = 0.002  # about 200 m of simplification for the boundary outlines
ONLINE_TILES = {
    "label": "OpenStreetMap tiles (online)",
    "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    "attribution": "&copy; OpenStreetMap contributors",
}
# Distinct colours for vehicles; pure red is kept for blocked legs.
VEHICLE_COLOURS = (
    "#1f77b4",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#ff7f0e",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#7b4173",
    "#3182bd",
    "#31a354",
    "#756bb1",
    "#636363",
    "#e6550d",
    "#0b6e4f",
    "#6a3d9a",
    "#b15928",
    "#08519c",
    "#006d2c",
    "#54278f",
    "#a63603",
)
KIND_LABELS = {
    "warehouse": "KPU warehouse (gudang)",
    "ppk": "PPK (kecamatan)",
    "pps": "PPS (desa / kelurahan)",
    "port": "Port",
}
LEG_STYLES: dict[str, dict[str, Any]] = {
    "road": {"color": "#a0522d", "weight": 2, "opacity": 0.55},
    "river": {"color": "#2b83ba", "weight": 3, "opacity": 0.7},
    "sea": {"color": "#00897b", "weight": 2, "opacity": 0.8, "dashArray": "2 6"},
    "access": {"color": "#888888", "weight": 1, "opacity": 0.6},
    "blocked": {"color": "#e31a1c", "weight": 4, "opacity": 0.95, "dashArray": "8 6"},
}
POINT_STYLES: dict[str, dict[str, Any]] = {
    "warehouse": {"radius": 9, "color": "#000000", "weight": 2, "fillColor": "#6a3d9a", "fillOpacity": 1},
    "ppk": {"radius": 6, "color": "#000000", "weight": 1, "fillColor": "#ff7f00", "fillOpacity": 1},
    "pps": {"radius": 4, "color": "#1b5e20", "weight": 1, "fillColor": "#66bb6a", "fillOpacity": 0.9},
    "port": {"radius": 5, "color": "#004d40", "weight": 1, "fillColor": "#4dd0e1", "fillOpacity": 1},
    "unserved": {"radius": 7, "color": "#880e4f", "weight": 2, "fillColor": "#f06292", "fillOpacity": 1},
}
BOUNDARY_STYLES: dict[str, dict[str, Any]] = {
    "kabupaten": {"color": "#333333", "weight": 2, "fill": True, "fillColor": "#f5f0e1", "fillOpacity": 0.6},
    "kecamatan": {"color": "#999999", "weight": 0.8, "fill": False, "dashArray": "3 3"},
}
DATA_ELEMENT_ID = "planner-map-data"  # the <script type="application/json"> that holds all the page draws
ROUTE_STYLE = {"weight": 4, "opacity": 0.9}
CHANGED_ROUTE_STYLE = {"color": "#ff7f00", "weight": 11, "opacity": 0.45}


# ---------------------------------------------------------------- boundaries


@dataclass(frozen=True)
class Boundaries:
    """Administrative outlines drawn as the offline basemap (EPSG:4326, columns code, name, geometry)."""

    kabupaten: gpd.GeoDataFrame
    kecamatan: gpd.GeoDataFrame | None = None


def load_boundaries(network_path: str | Path) -> Boundaries | None:
    """Kabupaten and kecamatan outlines named in a network folder's network.yaml; None if it has none."""
    from planner.network import load_config, network_dir

    folder = network_dir(network_path)
    if not (folder / "network.yaml").is_file():
        return None
    config, folder = load_config(folder)

    def read(path: Path) -> gpd.GeoDataFrame | None:
        if not path.is_file():
            return None
        frame = gpd.read_file(path, engine="pyogrio")
        frame = frame.set_crs("EPSG:4326") if frame.crs is None else frame.to_crs("EPSG:4326")
        return frame[["code", "name", "geometry"]]

    kabupaten = read(folder / config.sources.kabupaten)
    if kabupaten is None:
        return None
    return Boundaries(kabupaten, read(folder / config.sources.kecamatan))


# ---------------------------------------------------------------- map content


@dataclass(frozen=True)
class MapLayer:
    """One toggleable layer: GeoJSON features with popup rows, drawn with one style (features may override)."""

    label: str  # plain text; escaped when put on the page
    kind: Literal["polygon", "line", "point", "route"]
    features: list[dict]
    style: dict[str, Any]
    show: bool = True
    swatch: str = "#888888"
    dashed: bool = False


@dataclass(frozen=True)
class MapContent:
    title: str
    subtitle: str
    layers: list[MapLayer]
    bounds: tuple[float, float, float, float]  # min lon, min lat, max lon, max lat
    legend: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (symbol, label, style)


def _rounded(geometry: Any) -> Any:
    return shapely.transform(geometry, lambda xy: np.round(xy, COORDINATE_DECIMALS))


def map_feature(geometry: Any, title: str, rows: Sequence[tuple[str, str]], **extra: Any) -> dict:
    """A GeoJSON feature whose popup shows `title` and the (label, value) `rows`; the page inserts them as text."""
    properties: dict[str, Any] = {"t": title, "r": [[str(k), str(v)] for k, v in rows]}
    properties.update({k: v for k, v in extra.items() if v is not None})
    return {"type": "Feature", "geometry": mapping(_rounded(geometry)), "properties": properties}


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def _when(stop: Stop) -> str:
    return stop.arrival.strftime("%a %d %b %H:%M")


def _quantities(quantities: Mapping[str, int], names: Mapping[str, str]) -> list[tuple[str, str]]:
    return [(names.get(i, i), f"{q:,}") for i, q in quantities.items() if q]


def _node_rows(
    node_id: str,
    node: pd.Series,
    info: pd.DataFrame,
    visits: Sequence[tuple[Route, Stop]],
    names: Mapping[str, str],
    unserved: str | None,
) -> list[tuple[str, str]]:
    kind = _text(node.get("kind"))
    label = KIND_LABELS.get(kind, kind)
    if kind == "port":
        label = "Sea port" if node.get("port_type") == "sea" else "River jetty"
    rows = [("Code", _text(node.get("code")) or node_id), ("Kind", label), ("Node", node_id)]
    rows += [
        ("Kabupaten", _text(node.get("kabupaten_code"))),
        ("Kecamatan", _text(node.get("kecamatan_code"))),
    ]
    if node_id in info.index:
        rows += [("TPS", _text(info.at[node_id, "tps"])), ("DPT", f"{int(info.at[node_id, 'dpt']):,}")]
    delivered: dict[str, int] = {}
    loaded: dict[str, int] = {}
    for route, stop in visits:
        rows.append(("Arrival", f"{_when(stop)} - {route.vehicle_id} (trip {route.trip})"))
        for item_id, qty in stop.deliver.items():
            delivered[item_id] = delivered.get(item_id, 0) + qty
        for item_id, qty in stop.load.items():
            loaded[item_id] = loaded.get(item_id, 0) + qty
    rows += [(f"Delivered: {name}", qty) for name, qty in _quantities(delivered, names)]
    rows += [(f"Loaded: {name}", qty) for name, qty in _quantities(loaded, names)]
    if unserved:
        rows.append(("Unserved", unserved))
    return [(k, v) for k, v in rows if v != ""]


def _oriented_legs(route: Route, legs: pd.DataFrame) -> list[tuple[str, LineString]]:
    """The route's leg geometries, each pointing in the direction of travel.

    Road, sea and access legs are stored once and may be driven either way: follow the route from its base
    and flip a leg whose stored end is where the vehicle stands.
    """
    position = route.base
    out = []
    for leg_id in route.legs:
        leg = legs.loc[leg_id]
        geometry = leg.geometry
        if geometry is None or geometry.is_empty:
            continue
        if leg["from_node"] == position:
            position = leg["to_node"]
        elif leg["to_node"] == position:
            geometry = geometry.reverse()
            position = leg["from_node"]
        else:
            position = leg["to_node"]
        out.append((leg_id, geometry))
    return out


def _is_ship(route: Route, legs: pd.DataFrame) -> bool:
    return any(legs.at[leg, "mode"] == "sea" for leg in route.legs if leg in legs.index)


def _leg_features(frame: pd.DataFrame, node_names: Mapping[str, str], blocked: bool) -> list[dict]:
    features = []
    for leg_id, leg in frame.iterrows():
        if leg.geometry is None or leg.geometry.is_empty:
            continue
        rows = [
            ("Mode", leg["mode"]),
            ("From", f"{node_names.get(leg['from_node'], '')} ({leg['from_node']})"),
            ("To", f"{node_names.get(leg['to_node'], '')} ({leg['to_node']})"),
            ("Length", f"{float(leg['length_km']):,.1f} km"),
            ("Status", "BLOCKED" if blocked else "open"),
        ]
        if bool(leg.get("rapids", False)):
            rows.append(("Rapids", "yes (riam)"))
        if _text(leg.get("note")):
            rows.append(("Note", _text(leg.get("note"))))
        features.append(map_feature(leg.geometry, str(leg_id), rows))
    return features


def _boundary_features(frame: gpd.GeoDataFrame | None) -> list[dict]:
    if frame is None or frame.empty:
        return []
    simplified = frame.geometry.simplify(BOUNDARY_TOLERANCE_DEG, preserve_topology=True)
    return [
        map_feature(geom, _text(row["name"]), [("Code", _text(row["code"]))])
        for geom, (_, row) in zip(simplified, frame.iterrows(), strict=True)
        if geom is not None and not geom.is_empty
    ]


def boundary_layers(boundaries: Boundaries | None, lanal: bool) -> list[MapLayer]:
    """The offline basemap: kabupaten (and, except for Lanal, kecamatan) boundary layers."""
    if boundaries is None:
        return []
    layers = [
        MapLayer(
            "Kabupaten boundaries",
            "polygon",
            _boundary_features(boundaries.kabupaten),
            BOUNDARY_STYLES["kabupaten"],
            swatch="#f5f0e1",
        )
    ]
    if not lanal and boundaries.kecamatan is not None:
        layers.append(
            MapLayer(
                "Kecamatan boundaries",
                "polygon",
                _boundary_features(boundaries.kecamatan),
                BOUNDARY_STYLES["kecamatan"],
                swatch="#999999",
                dashed=True,
            )
        )
    return layers


def _leg_layers(
    legs: pd.DataFrame, blocked_ids: set[str], node_names: Mapping[str, str], lanal: bool
) -> list[MapLayer]:
    """One layer per mode of open legs (access links hidden at first) and one of blocked legs."""
    blocked = legs.index.isin(list(blocked_ids))
    modes = ("sea",) if lanal else ("road", "river", "sea", "access")
    labels = {"road": "Road legs", "river": "River legs", "sea": "Sea legs", "access": "Access links"}
    layers = []
    for mode in modes:
        style = LEG_STYLES[mode]
        frame = legs[~blocked & (legs["mode"] == mode)]
        layers.append(
            MapLayer(
                labels[mode],
                "line",
                _leg_features(frame, node_names, blocked=False),
                style,
                show=mode != "access",
                swatch=style["color"],
                dashed="dashArray" in style,
            )
        )
    frame = legs[blocked & legs["mode"].isin(list(modes))]
    layers.append(
        MapLayer(
            "Blocked legs",
            "line",
            _leg_features(frame, node_names, blocked=True),
            LEG_STYLES["blocked"],
            swatch=LEG_STYLES["blocked"]["color"],
            dashed=True,
        )
    )
    return layers


def _route_layers(
    routes: Sequence[Route], legs: pd.DataFrame, node_names: Mapping[str, str]
) -> list[MapLayer]:
    """One layer per vehicle (all its trips), one colour per vehicle."""
    by_vehicle: dict[str, list[Route]] = {}
    for route in sorted(routes, key=lambda r: (r.vehicle_id, r.trip)):
        by_vehicle.setdefault(route.vehicle_id, []).append(route)
    layers = []
    for index, (vehicle, vehicle_routes) in enumerate(by_vehicle.items()):
        colour = VEHICLE_COLOURS[index % len(VEHICLE_COLOURS)]
        features = [_route_feature(route, legs, node_names, colour) for route in vehicle_routes]
        layers.append(
            MapLayer(
                f"{vehicle} ({vehicle_routes[0].vehicle_type})",
                "route",
                [f for f in features if f is not None],
                {**ROUTE_STYLE, "color": colour},
                swatch=colour,
            )
        )
    return layers


def _stop_visits(routes: Sequence[Route]) -> dict[str, list[tuple[Route, Stop]]]:
    """Per node, the (route, stop) pairs that call there; a base is a visit only if goods move there."""
    visits: dict[str, list[tuple[Route, Stop]]] = {}
    for route in routes:
        for stop in route.stops:
            if stop.node_id != route.base or any(stop.deliver.values()) or any(stop.load.values()):
                visits.setdefault(stop.node_id, []).append((route, stop))
    return visits


def _plan_area(plan: Plan, nodes: pd.DataFrame, legs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The nodes and legs of the kabupaten the plan covers (all of them for a plan without routes),
    plus every node and leg its routes use: a Mahakam Ulu plan shows Mahakam Ulu."""
    kabupaten = {r.kabupaten_code for r in plan.routes} | {u.kabupaten_code for u in plan.unserved}
    if not kabupaten:
        return nodes, legs
    used_nodes = {n for r in plan.routes for n in (r.base, *(s.node_id for s in r.stops))}
    used_legs = {leg for r in plan.routes for leg in r.legs}
    keep = nodes["kabupaten_code"].isin(list(kabupaten)) | nodes.index.isin(list(used_nodes))
    kept = nodes.index[keep]
    legs_keep = (legs["from_node"].isin(kept) & legs["to_node"].isin(kept)) | legs.index.isin(list(used_legs))
    used_nodes |= set(legs.loc[legs_keep, "from_node"]) | set(legs.loc[legs_keep, "to_node"])
    return nodes[keep | nodes.index.isin(list(used_nodes))], legs[legs_keep]


def build_map_content(
    plan: Plan,
    network: Any,
    node_info: pd.DataFrame | None = None,
    audience: Audience = "kpu",
    *,
    items: Any = None,
    boundaries: Boundaries | None = None,
    changed: Collection[tuple[str, int]] = (),
) -> MapContent:
    """Everything the page draws, as plain data (no HTML yet). `changed`: (vehicle id, trip) of routes a
    re-plan changed, drawn under a wide orange band."""
    if audience not in AUDIENCES:
        raise InputError(f"unknown audience {audience!r}: choose one of {', '.join(AUDIENCES)}")
    check_plan_references(plan, network)
    nodes, legs = _plan_area(plan, network.nodes, network.legs)
    lanal = audience == "lanal"
    node_names = {str(k): _text(v) for k, v in nodes["name"].items()}
    blocked_ids = set(plan.blocked_legs) | set(legs.index[legs["status"] == "blocked"])
    routes = [r for r in plan.routes if _is_ship(r, legs)] if lanal else list(plan.routes)
    unserved = {} if lanal else {u.node_id: f"{u.reason}: {u.detail}".rstrip(": ") for u in plan.unserved}
    item_names = {item.id: item.name for item in item_infos(items, plan)}

    route_layers = _route_layers(routes, legs, node_names)
    changed_routes = [r for r in routes if (r.vehicle_id, r.trip) in set(changed)]
    changed_layer = MapLayer(
        "Changed by the re-plan",
        "line",
        [
            f
            for r in changed_routes
            if (f := _route_feature(r, legs, node_names, CHANGED_ROUTE_STYLE["color"])) is not None
        ],
        CHANGED_ROUTE_STYLE,
        swatch=CHANGED_ROUTE_STYLE["color"],
    )
    layers = [
        *boundary_layers(boundaries, lanal),
        *_leg_layers(legs, blocked_ids, node_names, lanal),
        *([changed_layer] if changed_routes else []),
        *route_layers,
        *_point_layers(nodes, node_info_table(node_info), _stop_visits(routes), item_names, unserved, lanal),
    ]
    shown = [f for layer in layers if layer.kind != "polygon" for f in layer.features]
    everything = [f for layer in layers for f in layer.features]
    bounds = _bounds(shown) or _bounds(everything) or (116.0, -2.5, 119.0, 2.5)
    title = f"{plan.scenario.name}: {'Lanal (sea)' if lanal else 'KPU'} route map"
    subtitle = (
        f"{_count(len(routes), 'trip')} by {_count(len(route_layers), 'ship' if lanal else 'vehicle')}; "
        f"distribution {plan.calendar.start:%d %b %H:%M} - {plan.calendar.pps_deadline:%d %b %Y %H:%M}"
    )
    if unserved:
        subtitle += f"; {_count(len(unserved), 'unserved stop')}"
    return MapContent(title, subtitle, layers, bounds, _legend(layers, lanal))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _route_feature(
    route: Route, legs: pd.DataFrame, node_names: Mapping[str, str], colour: str
) -> dict | None:
    parts = _oriented_legs(route, legs)
    if not parts:
        return None
    km = sum(float(legs.at[leg_id, "length_km"]) for leg_id, _ in parts)
    drops = [s for s in route.stops if any(s.deliver.values())]
    rows = [
        ("Vehicle type", route.vehicle_type),
        ("Kabupaten", route.kabupaten_code),
        ("Tier", "1: warehouse -> PPK" if route.tier == 1 else "2: PPK -> PPS"),
        ("Trip", str(route.trip)),
        ("Base", f"{node_names.get(route.base, '')} ({route.base})"),
        ("Stops with deliveries", str(len(drops))),
        ("Distance", f"{km:,.1f} km"),
    ]
    if route.stops:
        rows += [("Departs", _when(route.stops[0])), ("Last arrival", _when(route.stops[-1]))]
    rows += [
        (f"Stop {n}", f"{_when(s)} {node_names.get(s.node_id, '')} ({s.node_id})")
        for n, s in enumerate(drops, start=1)
    ]
    geometry = shapely.MultiLineString([g for _, g in parts])
    return map_feature(geometry, route.vehicle_id, rows, s={"color": colour}, a=1)


def _point_layers(
    nodes: pd.DataFrame,
    info: pd.DataFrame,
    visits: Mapping[str, list[tuple[Route, Stop]]],
    names: Mapping[str, str],
    unserved: Mapping[str, str],
    lanal: bool,
) -> list[MapLayer]:
    def features(frame: pd.DataFrame) -> list[dict]:
        return [
            map_feature(
                row.geometry,
                _text(row["name"]) or str(node_id),
                _node_rows(
                    str(node_id), row, info, visits.get(str(node_id), []), names, unserved.get(str(node_id))
                ),
                id=str(node_id),
            )
            for node_id, row in frame.iterrows()
            if row.geometry is not None and not row.geometry.is_empty
        ]

    kind = nodes["kind"]
    if lanal:
        ports = nodes[(kind == "port") & ((nodes["port_type"] == "sea") | nodes.index.isin(list(visits)))]
        stops = nodes[(kind != "port") & nodes.index.isin(list(visits))]
        return [
            MapLayer("Sea ports", "point", features(ports), POINT_STYLES["port"], swatch="#4dd0e1"),
            MapLayer(
                "Coastal and island stops served by ships",
                "point",
                features(stops),
                POINT_STYLES["pps"],
                swatch="#66bb6a",
            ),
        ]
    is_unserved = nodes.index.isin(list(unserved))
    layers = [
        MapLayer(
            "Ports and jetties",
            "point",
            features(nodes[kind == "port"]),
            POINT_STYLES["port"],
            swatch="#4dd0e1",
        ),
        MapLayer(
            "PPS (desa)",
            "point",
            features(nodes[(kind == "pps") & ~is_unserved]),
            POINT_STYLES["pps"],
            swatch="#66bb6a",
        ),
        MapLayer(
            "PPK (kecamatan)",
            "point",
            features(nodes[(kind == "ppk") & ~is_unserved]),
            POINT_STYLES["ppk"],
            swatch="#ff7f00",
        ),
        MapLayer(
            "Warehouses (gudang KPU)",
            "point",
            features(nodes[kind == "warehouse"]),
            POINT_STYLES["warehouse"],
            swatch="#6a3d9a",
        ),
    ]
    if unserved:
        layers.append(
            MapLayer(
                "Unserved stops",
                "point",
                features(nodes[is_unserved]),
                POINT_STYLES["unserved"],
                swatch="#f06292",
            )
        )
    return layers


def _bounds(features: Iterable[dict]) -> tuple[float, float, float, float] | None:
    coords = [
        xy for f in features for xy in shapely.get_coordinates(shapely.geometry.shape(f["geometry"])).tolist()
    ]
    if not coords:
        return None
    array = np.asarray(coords)
    (min_x, min_y), (max_x, max_y) = array.min(axis=0), array.max(axis=0)
    return float(min_x), float(min_y), float(max_x), float(max_y)


def _legend(layers: Sequence[MapLayer], lanal: bool) -> list[tuple[str, str, dict[str, Any]]]:
    entries: list[tuple[str, str, dict[str, Any]]] = []
    seen: set[str] = set()
    for layer in layers:
        if layer.kind == "route":
            continue
        if layer.label in seen:
            continue
        seen.add(layer.label)
        symbol = {"polygon": "box", "line": "line", "point": "dot"}[layer.kind]
        entries.append((symbol, layer.label, layer.style))
    route_label = "Ship route (one colour per ship" if lanal else "Vehicle route (one colour per vehicle"
    entries.append(
        ("route", route_label + "; arrows show the direction)", {**ROUTE_STYLE, "color": "#1f77b4"})
    )
    return entries


# ---------------------------------------------------------------- the page

_PAGE_CSS = """
.kpu-popup b { font-size: 1.05em; }
.kpu-popup table { border-collapse: collapse; margin-top: 4px; }
.kpu-popup th { text-align: left; font-weight: normal; color: #555; padding: 1px 8px 1px 0; vertical-align: top; }
.kpu-popup td { padding: 1px 0; }
.kpu-legend { background: rgba(255,255,255,0.93); padding: 6px 10px; border-radius: 6px; font: 12px/1.4 sans-serif;
  box-shadow: 0 1px 4px rgba(0,0,0,0.3); max-width: 300px; max-height: 60vh; overflow-y: auto; }
.kpu-legend summary { font-weight: bold; cursor: pointer; }
.kpu-legend .kpu-sub { color: #444; margin: 2px 0 6px; }
.kpu-legend .kpu-row { display: flex; align-items: center; gap: 6px; }
.kpu-legend svg { flex: none; }
.kpu-swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px;
  border: 1px solid #555; }
.kpu-swatch.kpu-dashed { border-style: dashed; }
.leaflet-control-layers-list { max-height: 60vh; overflow-y: auto; overflow-x: hidden; }
"""

# Builds the layers from the JSON data. Popup content is made of DOM text nodes, never parsed as HTML.
_PAGE_JS = r"""
(function (map, data) {
  "use strict";
  function popupContent(p) {
    var box = document.createElement("div");
    box.className = "kpu-popup";
    var title = document.createElement("b");
    title.textContent = p.t;
    box.appendChild(title);
    if (p.r && p.r.length) {
      var table = document.createElement("table");
      p.r.forEach(function (row) {
        var tr = table.insertRow();
        var th = document.createElement("th");
        th.textContent = row[0];
        tr.appendChild(th);
        tr.insertCell().textContent = row[1];
      });
      box.appendChild(table);
    }
    return box;
  }
  var byId = {};
  function bind(feature, layer) {
    var p = feature.properties || {};
    layer.bindPopup(function () { return popupContent(p); }, {maxWidth: 380});
    if (p.id) { byId[p.id] = layer; }
  }
  function styler(base) {
    return function (feature) {
      return Object.assign({}, base, (feature.properties && feature.properties.s) || {});
    };
  }
  var arrows = [];
  function placeArrows() {
    arrows.forEach(function (a) {
      var pts = a.latlngs.map(function (ll) { return map.latLngToLayerPoint(ll); });
      var lengths = [], total = 0;
      for (var i = 1; i < pts.length; i++) { lengths.push(pts[i].distanceTo(pts[i - 1])); total += lengths[i - 1]; }
      if (total < 24) { a.line.setLatLngs([]); return; }
      var rest = total * 0.4, k = 0;  // off-centre, so out-and-back arrows on one road do not overlap
      while (k < lengths.length - 1 && (rest > lengths[k] || lengths[k] === 0)) { rest -= lengths[k]; k++; }
      var p0 = pts[k], p1 = pts[k + 1], t = lengths[k] > 0 ? rest / lengths[k] : 0;
      var tip = L.point(p0.x + (p1.x - p0.x) * t, p0.y + (p1.y - p0.y) * t);
      var angle = Math.atan2(p1.y - p0.y, p1.x - p0.x), size = 10, spread = 0.5;
      var left = L.point(tip.x - size * Math.cos(angle - spread), tip.y - size * Math.sin(angle - spread));
      var right = L.point(tip.x - size * Math.cos(angle + spread), tip.y - size * Math.sin(angle + spread));
      a.line.setLatLngs([left, tip, right].map(function (p) { return map.layerPointToLatLng(p); }));
    });
  }
  var overlays = {};
  var baseLayers = {};
  baseLayers[data.offlineLabel] = L.layerGroup().addTo(map);
  if (data.tiles) {
    baseLayers[data.tiles.label] = L.tileLayer(data.tiles.url, {attribution: data.tiles.attribution, maxZoom: 18});
  }
  data.layers.forEach(function (spec) {
    var style = styler(spec.style);
    var options = {style: style};
    if (spec.kind === "polygon") {
      options.interactive = false;
    } else {
      options.onEachFeature = bind;
    }
    if (spec.kind === "point") {
      options.pointToLayer = function (feature, latlng) { return L.circleMarker(latlng, style(feature)); };
    }
    var group = L.geoJSON({type: "FeatureCollection", features: spec.features}, options);
    if (spec.kind === "route") {
      spec.features.forEach(function (feature) {
        var colour = style(feature).color;
        feature.geometry.coordinates.forEach(function (part) {
          var line = L.polyline([], {color: colour, weight: 3, opacity: 1, interactive: false});
          arrows.push({line: line, latlngs: part.map(function (c) { return L.latLng(c[1], c[0]); })});
          group.addLayer(line);
        });
      });
    }
    if (spec.show) { group.addTo(map); }
    overlays[spec.label] = group;
  });
  L.control.layers(baseLayers, overlays, {collapsed: true}).addTo(map);
  var legend = L.control({position: "bottomleft"});
  legend.onAdd = function () {
    var div = L.DomUtil.create("div", "kpu-legend");
    div.innerHTML = data.legendHtml;
    if (window.innerWidth < 700) { div.querySelector("details").removeAttribute("open"); }  // phones: folded
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    return div;
  };
  legend.addTo(map);
  var b = data.bounds;
  map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {padding: [20, 20]});
  placeArrows();
  map.on("zoomend", placeArrows);
  var wanted = /^#popup=(.+)$/.exec(window.location.hash);
  if (wanted) {
    var target = byId[decodeURIComponent(wanted[1])];
    if (target && map.hasLayer(target)) {
      map.setView(target.getLatLng ? target.getLatLng() : target.getBounds().getCenter(), Math.max(map.getZoom(), 10));
      target.openPopup();
    }
  }
})
"""


def _script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element: no '<', '>' or '&' can end it or open a comment."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text


def _layer_label_html(layer: MapLayer) -> str:
    dashed = " kpu-dashed" if layer.dashed else ""
    return f'<span class="kpu-swatch{dashed}" style="background:{layer.swatch}"></span>{html.escape(layer.label)}'


def _symbol_svg(symbol: str, style: Mapping[str, Any]) -> str:
    colour = html.escape(str(style.get("color", "#333")), quote=True)
    fill = html.escape(str(style.get("fillColor", colour)), quote=True)
    dash = html.escape(str(style.get("dashArray", "")), quote=True)
    if symbol == "dot":
        return (
            f'<svg width="18" height="14"><circle cx="9" cy="7" r="5" fill="{fill}" stroke="{colour}"/></svg>'
        )
    if symbol == "box":
        fill_attr = fill if style.get("fill", True) else "none"
        return (
            f'<svg width="18" height="14"><rect x="2" y="2" width="14" height="10" fill="{fill_attr}" '
            f'stroke="{colour}" stroke-dasharray="{dash}"/></svg>'
        )
    width = html.escape(str(min(float(style.get("weight", 2)), 4)), quote=True)
    marker = (
        f'<polyline points="9,3 14,7 9,11" fill="none" stroke="{colour}" stroke-width="2"/>'
        if symbol == "route"
        else ""
    )
    return (
        f'<svg width="18" height="14"><line x1="1" y1="7" x2="17" y2="7" stroke="{colour}" '
        f'stroke-width="{width}" stroke-dasharray="{dash}"/>{marker}</svg>'
    )


def _legend_html(content: MapContent) -> str:
    rows = "".join(
        f'<div class="kpu-row">{_symbol_svg(symbol, style)}<span>{html.escape(label)}</span></div>'
        for symbol, label, style in content.legend
    )
    return (
        f"<details open><summary>{html.escape(content.title)}</summary>"
        f'<div class="kpu-sub">{html.escape(content.subtitle)}</div>{rows}'
        '<div class="kpu-sub">Tap a line or a dot for details. Layers: top right. '
        "Works offline; online tiles are optional.</div></details>"
    )


def _page_data(content: MapContent) -> dict[str, Any]:
    return {
        "offlineLabel": "Offline (boundaries only)",
        "tiles": ONLINE_TILES,
        "bounds": list(content.bounds),
        "legendHtml": _legend_html(content),
        "layers": [
            {
                "label": _layer_label_html(layer),
                "kind": layer.kind,
                "style": layer.style,
                "show": layer.show,
                "features": layer.features,
            }
            for layer in content.layers
        ],
    }


def _leaflet_assets() -> tuple[str, str]:
    """leaflet.js and leaflet.css from the django-js-lib-leaflet package, images inlined as data URIs."""
    folder = resources.files("js_lib_leaflet") / "static" / "js_lib_leaflet"
    script = (folder / "leaflet.js").read_text(encoding="utf-8")
    script = re.sub(r"//# sourceMappingURL=\S+\s*$", "", script)
    css = (folder / "leaflet.css").read_text(encoding="utf-8")

    def inline(match: re.Match[str]) -> str:
        data = (folder / "images" / match.group(1)).read_bytes()
        return f"url(data:image/png;base64,{base64.b64encode(data).decode('ascii')})"

    css = re.sub(r"url\(images/([A-Za-z0-9_.-]+\.png)\)", inline, css)
    return script, css


_SLOT = re.compile(r"@@planner-slot-([a-z_]+)@@")


def _slot(name: str) -> str:
    """A marker that folium renders as plain text and `_fill_slots` replaces after rendering."""
    return f"@@planner-slot-{name}@@"


def _fill_slots(rendered: str, values: Mapping[str, str]) -> str:
    """Replace each slot marker of the rendered page by its value, in one pass.

    The values (page data, title, scripts) never go through a template engine: branca renders the script
    of a page a second time, so anything put there as template text would be evaluated. Text inserted here
    is not scanned again, so a marker inside the data stays as it is.
    """
    found = _SLOT.findall(rendered)
    if sorted(found) != sorted(values):
        raise RuntimeError(f"map page slots {sorted(found)} do not match {sorted(values)}")
    return _SLOT.sub(lambda match: values[match.group(1)], rendered)


class _PlannerLayers(MacroElement):
    """Calls the planner's page script on the folium map; code and data are slots filled after rendering."""

    _template = Template(
        "{% macro script(this, kwargs) %}\n"
        "(" + _slot("page_js") + ")({{ this._parent.get_name() }}, "
        f'JSON.parse(document.getElementById("{DATA_ELEMENT_ID}").textContent));\n'
        "{% endmacro %}"
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "PlannerLayers"


def _fix_element_ids(element: Any, counter: list[int]) -> None:
    """folium names elements with random ids; number them instead so the same plan gives the same file."""
    element._id = f"{counter[0]:04d}"
    counter[0] += 1
    for child in list(element._children.values()):
        _fix_element_ids(child, counter)


def render_map_html(content: MapContent) -> str:
    """The self-contained HTML page for `content`.

    folium lays out the page and creates the Leaflet map; everything from data (and the inlined assets)
    is put in afterwards by `_fill_slots`, so no string from a plan or a network is ever template text.
    """
    leaflet_js, leaflet_css = _leaflet_assets()
    min_x, min_y, max_x, max_y = content.bounds
    fmap = folium.Map(
        location=[(min_y + max_y) / 2, (min_x + max_x) / 2],
        zoom_start=7,
        tiles=None,
        control_scale=True,
    )
    fmap.default_js = []
    fmap.default_css = []
    figure = fmap.get_root()
    figure.title = _slot("title")
    figure.header.add_child(Element(f"<style>{_slot('leaflet_css')}</style>"), name="leaflet_css")
    figure.header.add_child(Element(f"<style>{_slot('page_css')}</style>"), name="planner_css")
    figure.header.add_child(Element(f"<script>{_slot('leaflet_js')}</script>"), name="leaflet_js")
    figure.header.add_child(
        Element(f'<script type="application/json" id="{DATA_ELEMENT_ID}">{_slot("data")}</script>'),
        name="planner_data",
    )
    fmap.add_child(_PlannerLayers())
    _fix_element_ids(figure, [0])
    return _fill_slots(
        figure.render(),
        {
            "title": html.escape(content.title),
            "leaflet_css": leaflet_css,
            "page_css": _PAGE_CSS,
            "leaflet_js": leaflet_js,
            "page_js": _PAGE_JS.strip(),
            "data": _script_json(_page_data(content)),
        },
    )


def write_map(
    plan: Plan,
    network: Any,
    node_info: pd.DataFrame | None,
    audience: Audience,
    out_path: str | Path,
    *,
    items: Sequence[ItemInfo] | Any = None,
    boundaries: Boundaries | None = None,
    changed: Collection[tuple[str, int]] = (),
) -> Path:
    """Write the route map of `plan` for `audience` ('kpu' or 'lanal') as one offline HTML file."""
    content = build_map_content(
        plan, network, node_info, audience, items=items, boundaries=boundaries, changed=changed
    )
    return write_text(out_path, render_map_html(content))
