"""Route maps as one self-contained HTML file (folium + Leaflet inlined) that opens offline on any phone.

Two audiences:
- `kpu`: everything: boundaries, roads (trunk and assumed local roads), rivers, lakes, sea, ferries and
  bridges, blocked legs, every vehicle's route coloured by vehicle type (one kabupaten highlighted on
  request), warehouses, PPK, PPS, ports and unserved stops, and a time control that shows where each vehicle
  is at a chosen hour.
- `lanal`: what the navy needs: sea legs (open and blocked), the ships (routes that use a sea leg), sea ports,
  the coastal and island stops the ships serve, and a table of every sea trip (vessel, stops with departure,
  ETA and cargo in packages and kg, the return) beside the map.

Words on the map come from the `maps` section of the message catalog (planner.i18n): Indonesian by default.

The page loads nothing from the internet: Leaflet's script and stylesheet come from the installed
`django-js-lib-leaflet` package and are inlined, its images as data URIs; folium's CDN assets are dropped.
An online tile layer is offered but off.

Nothing from data is ever template text: folium renders a page with slot markers, and the data (one JSON
document in a `<script type="application/json">`, escaped for a script element), the title and the assets
are put into the rendered page afterwards, in one pass. The page script builds popups, labels and the trip
table from DOM text nodes, so a desa named `<script>...</script>` shows as text. Layer names and the legend,
which Leaflet inserts as HTML, are escaped here.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from babel.dates import format_datetime
from branca.element import Element, MacroElement
from folium.template import Template
from shapely.geometry import LineString, mapping

from planner.catalog import Item
from planner.errors import InputError
from planner.fileio import write_text
from planner.i18n import DEFAULT_LANGUAGE, TIMEZONE, ZONE_LABEL, Language, language
from planner.plan import Plan, Route, Stop
from planner.report import check_plan_references, item_infos, node_info_table

Audience = Literal["kpu", "lanal"]
AUDIENCES: tuple[str, ...] = ("kpu", "lanal")
COORDINATE_DECIMALS = 5  # about 1 m: plenty for a route map, and it keeps the file small
TRACK_DECIMALS = 4  # about 10 m: where a moving vehicle is drawn by the time control
TRACK_TOLERANCE_DEG = 0.001  # about 100 m of simplification for the time-control tracks
TIME_STEP_MIN = 15  # the time control moves in quarter hours
BOUNDARY_TOLERANCE_DEG = 0.002  # about 200 m of simplification for the boundary outlines
ONLINE_TILES = {
    "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    "attribution": "&copy; OpenStreetMap contributors",
}
# Vehicle types fall into five families a driver or crew recognises; each family has one hue in a few
# shades (vehicles of a family take them in turn). Pure red is kept for blocked legs.
VEHICLE_FAMILIES = ("truck", "pickup", "longboat", "speedboat", "ship", "other")
FAMILY_SHADES: dict[str, tuple[str, ...]] = {
    "truck": ("#7f3b08", "#a6611a", "#5e3c1b", "#b35806"),
    "pickup": ("#f57c00", "#e65100", "#ff9800", "#c75b00"),
    "longboat": ("#0d47a1", "#1e88e5", "#283593", "#1565c0"),
    "speedboat": ("#00838f", "#00acc1", "#006064", "#26a69a"),
    "ship": ("#6a1b9a", "#8e24aa", "#4a148c", "#ad1457"),
    "other": ("#424242", "#757575"),
}
FAMILY_OF_TYPE = {
    "truck": "truck",
    "pickup": "pickup",
    "longboat": "longboat",
    "speedboat": "speedboat",
    "kapal_motor": "ship",
    "navy_vessel": "ship",
    "ship": "ship",
    "ferry": "ship",
}
FADED_ROUTE_STYLE = {"color": "#9e9e9e", "weight": 2, "opacity": 0.35}
LEG_STYLES: dict[str, dict[str, Any]] = {
    "road": {"color": "#8d8d8d", "weight": 2, "opacity": 0.6},
    "trunk": {"color": "#5d4037", "weight": 3.5, "opacity": 0.85},
    "local": {"color": "#a1887f", "weight": 1.5, "opacity": 0.55, "dashArray": "4 4"},
    "river": {"color": "#64b5f6", "weight": 3, "opacity": 0.75},
    "sea": {"color": "#4db6ac", "weight": 2, "opacity": 0.85, "dashArray": "2 6"},
    "ferry": {"color": "#00695c", "weight": 3, "opacity": 0.9, "dashArray": "10 5"},
    "bridge": {"color": "#212121", "weight": 5, "opacity": 0.9},
    "access": {"color": "#888888", "weight": 1, "opacity": 0.6},
    "blocked": {"color": "#e31a1c", "weight": 4, "opacity": 0.95, "dashArray": "8 6"},
}
LAKE_STYLE = {"color": "#4a90c2", "weight": 1, "fill": True, "fillColor": "#a6d1f0", "fillOpacity": 0.8}
POINT_STYLES: dict[str, dict[str, Any]] = {
    "warehouse": {"radius": 9, "color": "#000000", "weight": 2, "fillColor": "#6a3d9a", "fillOpacity": 1},
    "ppk": {"radius": 6, "color": "#000000", "weight": 1, "fillColor": "#ffd54f", "fillOpacity": 1},
    "pps": {"radius": 4, "color": "#1b5e20", "weight": 1, "fillColor": "#66bb6a", "fillOpacity": 0.9},
    "port": {"radius": 5, "color": "#004d40", "weight": 1, "fillColor": "#4dd0e1", "fillOpacity": 1},
    "unserved": {"radius": 7, "color": "#880e4f", "weight": 2, "fillColor": "#f06292", "fillOpacity": 1},
}
# The zoom level from which a place's name is written on the map (7 shows all of Kaltim on a phone).
LABEL_ZOOM = {"warehouse": 7, "ppk": 10, "sea_port": 9, "port": 11}
BOUNDARY_STYLES: dict[str, dict[str, Any]] = {
    "kabupaten": {"color": "#333333", "weight": 2, "fill": True, "fillColor": "#f5f0e1", "fillOpacity": 0.6},
    "kecamatan": {"color": "#999999", "weight": 0.8, "fill": False, "dashArray": "3 3"},
}
DATA_ELEMENT_ID = "planner-map-data"  # the <script type="application/json"> that holds all the page draws
ROUTE_STYLE = {"weight": 4, "opacity": 0.9}
HIGHLIGHT_ROUTE_STYLE = {"weight": 6, "opacity": 1.0}
CHANGED_ROUTE_STYLE = {"color": "#ff7f00", "weight": 11, "opacity": 0.45}


# ---------------------------------------------------------------- boundaries


@dataclass(frozen=True)
class Boundaries:
    """Administrative outlines drawn as the offline basemap (EPSG:4326, columns code, name, geometry).

    `lakes`: lake polygons (code, name, geometry) when the network config names a `lakes` source.
    """

    kabupaten: gpd.GeoDataFrame
    kecamatan: gpd.GeoDataFrame | None = None
    lakes: gpd.GeoDataFrame | None = None


def _read_outlines(path: Path) -> gpd.GeoDataFrame | None:
    if not path.is_file():
        return None
    frame = gpd.read_file(path, engine="pyogrio")
    frame = frame.set_crs("EPSG:4326") if frame.crs is None else frame.to_crs("EPSG:4326")
    for column in ("code", "name"):
        if column not in frame.columns:
            frame[column] = ""
    return frame[["code", "name", "geometry"]]


def load_boundaries(network_path: str | Path) -> Boundaries | None:
    """Kabupaten and kecamatan outlines (and lakes, if configured) named in a network folder's network.yaml;
    None if it has none."""
    from planner.network import load_config, network_dir

    folder = network_dir(network_path)
    if not (folder / "network.yaml").is_file():
        return None
    config, folder = load_config(folder)
    kabupaten = _read_outlines(folder / config.sources.kabupaten)
    if kabupaten is None:
        return None
    lakes_source = getattr(config.sources, "lakes", None)
    lakes = _read_outlines(folder / lakes_source) if lakes_source else None
    return Boundaries(kabupaten, _read_outlines(folder / config.sources.kecamatan), lakes)


def boundaries_of_kabupaten(boundaries: Boundaries | None, code: str) -> Boundaries | None:
    """The outlines for one kabupaten's map: every kabupaten (the context), its own kecamatan, all lakes."""
    if boundaries is None or boundaries.kecamatan is None:
        return boundaries
    kecamatan = boundaries.kecamatan[boundaries.kecamatan["code"].astype(str).str.startswith(code + ".")]
    return replace(boundaries, kecamatan=kecamatan)


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
    interactive: bool = False  # polygons only: lakes have popups, boundaries do not


@dataclass(frozen=True)
class MapContent:
    """Everything one map page draws, as plain data; `extra` goes to the page script as it is (time control
    tracks, the trip table)."""

    title: str
    subtitle: str
    layers: list[MapLayer]
    bounds: tuple[float, float, float, float]  # min lon, min lat, max lon, max lat
    legend: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (symbol, label, style)
    lang: str = DEFAULT_LANGUAGE
    extra: dict[str, Any] = field(default_factory=dict)


def _rounded(geometry: Any, decimals: int = COORDINATE_DECIMALS) -> Any:
    return shapely.transform(geometry, lambda xy: np.round(xy, decimals))


def map_feature(
    geometry: Any,
    title: str,
    rows: Sequence[tuple[str, str]],
    details: Sequence[tuple[str, str]] = (),
    **extra: Any,
) -> dict:
    """A GeoJSON feature whose popup shows `title` and the (label, value) `rows`, with `details` folded away
    under a <details> element; the page inserts them all as text."""
    properties: dict[str, Any] = {"t": title, "r": [[str(k), str(v)] for k, v in rows]}
    if details:
        properties["d"] = [[str(k), str(v)] for k, v in details]
    properties.update({k: v for k, v in extra.items() if v is not None})
    return {"type": "Feature", "geometry": mapping(_rounded(geometry)), "properties": properties}


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def vehicle_family(vehicle_type: str) -> str:
    """The family (truck, pickup, longboat, speedboat, ship, other) a fleet vehicle type belongs to."""
    family = FAMILY_OF_TYPE.get(vehicle_type)
    if family is not None:
        return family
    lowered = vehicle_type.lower()
    for word, name in (("kapal", "ship"), ("ship", "ship"), ("navy", "ship"), ("boat", "speedboat")):
        if word in lowered:
            return name
    return "other"


@dataclass(frozen=True)
class Wording:
    """The language of a map and what it needs to write quantities and times."""

    lang: Language
    items: Sequence[Item]
    loose: frozenset[str]  # item ids not counted as packages (ballot sheets travel inside the TPS kits)

    def when(self, moment: datetime) -> str:
        """Short day and clock time in WITA: "Sab 23 Nov, 09.00 WITA"."""
        local = moment.astimezone(TIMEZONE)
        return f"{format_datetime(local, 'EEE d MMM', locale=self.lang.code)}, {self.lang.time(local)}"

    def cargo(self, quantities: Mapping[str, int]) -> tuple[int, float | None]:
        """(packages, kg) of a set of quantities; kg is None without a catalog."""
        packages = sum(q for item_id, q in quantities.items() if item_id not in self.loose)
        weights = {i.id: i.unit_kg if i.weight_known else None for i in self.items}
        known = all(weights.get(item_id) is not None for item_id, q in quantities.items() if q)
        kg = sum(q * (weights.get(item_id) or 0.0) for item_id, q in quantities.items())
        return packages, (kg if known and self.items else None)

    def cargo_text(self, quantities: Mapping[str, int]) -> str:
        packages, kg = self.cargo(quantities)
        text = self.lang("maps.unit.packages", count=self.lang.number(packages))
        if kg is not None:
            text += ", " + self.lang("maps.unit.kg", count=self.lang.number(kg))
        return text


def _loose_items(items: Any) -> frozenset[str]:
    """Catalog items counted by the sheet rather than the package (rule per_voter...): ballots."""
    if items is None:
        return frozenset()
    entries = items.to_dict("records") if isinstance(items, pd.DataFrame) else list(items)
    loose = set()
    for entry in entries:
        rule = entry.get("rule") if isinstance(entry, Mapping) else getattr(entry, "rule", None)
        item_id = entry.get("id") if isinstance(entry, Mapping) else getattr(entry, "id", None)
        if rule and str(rule).startswith("per_voter"):
            loose.add(str(item_id))
    return frozenset(loose)


def _kind_label(node: pd.Series, words: Wording) -> str:
    kind = _text(node.get("kind"))
    if kind == "port":
        return words.lang("maps.kind.sea_port" if node.get("port_type") == "sea" else "maps.kind.jetty")
    key = f"maps.kind.{kind}"
    return words.lang(key) if key in words.lang.messages else kind


def _node_rows(
    node_id: str,
    node: pd.Series,
    info: pd.DataFrame,
    visits: Sequence[tuple[Route, Stop]],
    words: Wording,
    unserved: str | None,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The short popup rows (code, kind, TPS, arrivals, packages and kg) and the folded details."""
    t = words.lang
    rows = [
        (t("maps.row.code"), _text(node.get("code")) or node_id),
        (t("maps.row.kind"), _kind_label(node, words)),
    ]
    details = [(t("maps.row.node"), node_id), (t("maps.row.kecamatan"), _text(node.get("kecamatan_code")))]
    if node_id in info.index:
        rows.append((t("maps.row.tps"), _text(info.at[node_id, "tps"])))
        details.append((t("maps.row.dpt"), t.number(int(info.at[node_id, "dpt"]))))
    delivered: dict[str, int] = {}
    loaded: dict[str, int] = {}
    for route, stop in visits:
        rows.append((t("maps.row.arrival"), f"{words.when(stop.arrival)} ({route.vehicle_id})"))
        for item_id, qty in stop.deliver.items():
            delivered[item_id] = delivered.get(item_id, 0) + qty
        for item_id, qty in stop.load.items():
            loaded[item_id] = loaded.get(item_id, 0) + qty
    names = {item.id: item.name for item in words.items}
    if any(delivered.values()):
        rows.append((t("maps.row.delivered"), words.cargo_text(delivered)))
        details += [(names.get(i, i), t.number(q)) for i, q in delivered.items() if q]
    if any(loaded.values()):
        rows.append((t("maps.row.loaded"), words.cargo_text(loaded)))
        details += [
            (f"{t('maps.row.loaded')}: {names.get(i, i)}", t.number(q)) for i, q in loaded.items() if q
        ]
    if unserved:
        rows.append((t("maps.row.unserved"), unserved))
    return [(k, v) for k, v in rows if v != ""], [(k, v) for k, v in details if v != ""]


def _oriented_legs(route: Route, legs: pd.DataFrame) -> list[tuple[str, LineString | None, str]]:
    """The route's legs as (leg id, geometry pointing in the direction of travel, node reached).

    Road, sea and access legs are stored once and may be driven either way: follow the route from its base
    and flip a leg whose stored end is where the vehicle stands. A leg without geometry gives None.
    """
    position = route.base
    out: list[tuple[str, LineString | None, str]] = []
    for leg_id in route.legs:
        leg = legs.loc[leg_id]
        geometry = leg.geometry if leg.geometry is not None and not leg.geometry.is_empty else None
        if leg["from_node"] == position:
            position = leg["to_node"]
        elif leg["to_node"] == position:
            geometry = geometry.reverse() if geometry is not None else None
            position = leg["from_node"]
        else:
            position = leg["to_node"]
        out.append((leg_id, geometry, position))
    return out


def _is_ship(route: Route, legs: pd.DataFrame) -> bool:
    return any(legs.at[leg, "mode"] == "sea" for leg in route.legs if leg in legs.index)


def _leg_class(leg: pd.Series) -> str:
    """The map class of a leg: trunk, local, road (no class known), bridge, ferry, river, sea or access."""
    mode = _text(leg.get("mode"))
    if mode == "ferry":
        return "ferry"
    if mode != "road":
        return mode
    if _text(leg.get("crossing")):
        return "bridge"
    road_class = _text(leg.get("road_class"))
    return road_class if road_class in ("trunk", "local") else "road"


def _leg_features(
    frame: pd.DataFrame, node_names: Mapping[str, str], blocked: bool, words: Wording
) -> list[dict]:
    t = words.lang
    features = []
    for leg_id, leg in frame.iterrows():
        if leg.geometry is None or leg.geometry.is_empty:
            continue
        leg_class = _leg_class(leg)
        mode_key = f"maps.mode.{leg['mode']}"
        rows = [
            (t("maps.row.mode"), t(mode_key) if mode_key in t.messages else _text(leg["mode"])),
            (t("maps.row.from"), node_names.get(leg["from_node"], "") or str(leg["from_node"])),
            (t("maps.row.to"), node_names.get(leg["to_node"], "") or str(leg["to_node"])),
            (t("maps.row.length"), t("maps.unit.km", count=t.number(float(leg["length_km"]), 1))),
            (t("maps.row.status"), t("maps.status.blocked") if blocked else t("maps.status.open")),
        ]
        if leg_class in ("trunk", "local"):
            rows.append((t("maps.row.road_class"), t(f"maps.road_class.{leg_class}")))
        if _text(leg.get("crossing")):
            rows.append((t("maps.row.crossing"), _text(leg.get("crossing"))))
        details = [(t("maps.row.leg"), str(leg_id))]
        if bool(leg.get("rapids", False)):
            details.append((t("maps.row.rapids"), t("maps.rapids.yes")))
        if _text(leg.get("note")):
            details.append((t("maps.row.note"), _text(leg.get("note"))))
        features.append(map_feature(leg.geometry, str(leg_id), rows, details, id=str(leg_id)))
    return features


def _boundary_features(frame: gpd.GeoDataFrame | None, code_label: str) -> list[dict]:
    if frame is None or frame.empty:
        return []
    simplified = frame.geometry.simplify(BOUNDARY_TOLERANCE_DEG, preserve_topology=True)
    return [
        map_feature(geom, _text(row["name"]), [(code_label, _text(row["code"]))])
        for geom, (_, row) in zip(simplified, frame.iterrows(), strict=True)
        if geom is not None and not geom.is_empty
    ]


def boundary_layers(
    boundaries: Boundaries | None, lanal: bool, lang: Language | None = None
) -> list[MapLayer]:
    """The offline basemap: kabupaten (and, except for Lanal, kecamatan) boundary layers, and lakes."""
    if boundaries is None:
        return []
    t = lang or language()
    code = t("maps.row.code")
    layers = [
        MapLayer(
            t("maps.layer.kabupaten"),
            "polygon",
            _boundary_features(boundaries.kabupaten, code),
            BOUNDARY_STYLES["kabupaten"],
            swatch="#f5f0e1",
        )
    ]
    if not lanal and boundaries.kecamatan is not None:
        layers.append(
            MapLayer(
                t("maps.layer.kecamatan"),
                "polygon",
                _boundary_features(boundaries.kecamatan, code),
                BOUNDARY_STYLES["kecamatan"],
                swatch="#999999",
                dashed=True,
            )
        )
    if boundaries.lakes is not None and not boundaries.lakes.empty:
        layers.append(
            MapLayer(
                t("maps.layer.lakes"),
                "polygon",
                _boundary_features(boundaries.lakes, code),
                LAKE_STYLE,
                swatch=LAKE_STYLE["fillColor"],
                interactive=True,
            )
        )
    return layers


def _leg_layers(
    legs: pd.DataFrame, blocked_ids: set[str], node_names: Mapping[str, str], lanal: bool, words: Wording
) -> list[MapLayer]:
    """One layer per class of open legs (a class only if the network has it; access links hidden at first)
    and one of blocked legs."""
    t = words.lang
    blocked = legs.index.isin(list(blocked_ids))
    classes = legs.apply(_leg_class, axis=1) if len(legs) else pd.Series(dtype=str)
    wanted = ("sea",) if lanal else ("trunk", "road", "local", "bridge", "ferry", "river", "sea", "access")
    classed = bool(classes.isin(["trunk", "local"]).any())  # a rebuilt network: no unclassed road layer
    always = ("sea",) if lanal else (*(() if classed else ("road",)), "river", "sea", "access")
    layers = []
    for leg_class in wanted:
        frame = legs[~blocked & (classes == leg_class)]
        if frame.empty and leg_class not in always:
            continue
        style = LEG_STYLES[leg_class]
        layers.append(
            MapLayer(
                t(f"maps.layer.{leg_class}"),
                "line",
                _leg_features(frame, node_names, False, words),
                style,
                show=leg_class != "access",
                swatch=style["color"],
                dashed="dashArray" in style,
            )
        )
    frame = legs[blocked & classes.isin(list(wanted))]
    layers.append(
        MapLayer(
            t("maps.layer.blocked"),
            "line",
            _leg_features(frame, node_names, True, words),
            LEG_STYLES["blocked"],
            swatch=LEG_STYLES["blocked"]["color"],
            dashed=True,
        )
    )
    return layers


def vehicle_colours(routes: Sequence[Route]) -> dict[str, str]:
    """A colour per vehicle: its family's hue, the shades taken in turn by the family's vehicles."""
    colours: dict[str, str] = {}
    counters: dict[str, int] = {}
    for route in sorted(routes, key=lambda r: r.vehicle_id):
        if route.vehicle_id in colours:
            continue
        family = vehicle_family(route.vehicle_type)
        shades = FAMILY_SHADES[family]
        colours[route.vehicle_id] = shades[counters.get(family, 0) % len(shades)]
        counters[family] = counters.get(family, 0) + 1
    return colours


def _route_layers(
    routes: Sequence[Route],
    legs: pd.DataFrame,
    node_names: Mapping[str, str],
    words: Wording,
    highlight: str | None,
) -> list[MapLayer]:
    """One layer per vehicle family (its vehicles in shades of the family's hue); with `highlight`, that
    kabupaten's routes in a layer of their own, drawn wide, and the others faded."""
    t = words.lang
    colours = vehicle_colours(routes)
    groups: dict[str, list[dict]] = {}
    ordered = sorted(routes, key=lambda r: (r.vehicle_id, r.trip))
    for route in ordered:
        lit = highlight is None or route.kabupaten_code == highlight
        style = {"color": colours[route.vehicle_id]} if lit else dict(FADED_ROUTE_STYLE)
        if highlight is not None and lit:
            style.update(HIGHLIGHT_ROUTE_STYLE)
        feature = _route_feature(route, legs, node_names, style, words)
        if feature is None:
            continue
        key = "highlight" if highlight is not None and lit else vehicle_family(route.vehicle_type)
        groups.setdefault(key, []).append(feature)
    layers = []
    for family in VEHICLE_FAMILIES:
        if family in groups:
            shades = FAMILY_SHADES[family]
            layers.append(
                MapLayer(
                    t(f"maps.vehicle.{family}"),
                    "route",
                    groups[family],
                    {**ROUTE_STYLE, "color": shades[0]},
                    swatch=shades[0],
                )
            )
    if "highlight" in groups:
        layers.append(
            MapLayer(
                t("maps.layer.highlight", code=highlight),
                "route",
                groups["highlight"],
                {**ROUTE_STYLE, **HIGHLIGHT_ROUTE_STYLE, "color": "#000000"},
                swatch="#000000",
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


def _route_feature(
    route: Route, legs: pd.DataFrame, node_names: Mapping[str, str], style: Mapping[str, Any], words: Wording
) -> dict | None:
    t = words.lang
    parts = [(leg_id, g) for leg_id, g, _ in _oriented_legs(route, legs) if g is not None]
    if not parts:
        return None
    km = sum(float(legs.at[leg_id, "length_km"]) for leg_id, _ in parts)
    drops = [s for s in route.stops if any(s.deliver.values())]
    family = vehicle_family(route.vehicle_type)
    rows = [
        (t("maps.row.vehicle_type"), f"{t(f'maps.vehicle.{family}')} ({route.vehicle_type})"),
        (t("maps.row.kabupaten"), route.kabupaten_code),
        (t("maps.row.tier"), t("maps.tier.1") if route.tier == 1 else t("maps.tier.2")),
        (t("maps.row.trip"), str(route.trip)),
        (t("maps.row.base"), node_names.get(route.base, "") or route.base),
    ]
    if route.stops:
        rows += [
            (t("maps.row.departs"), words.when(route.stops[0].departure)),
            (t("maps.row.returns"), words.when(route.stops[-1].arrival)),
        ]
    rows += [
        (t("maps.row.drops"), str(len(drops))),
        (t("maps.row.distance"), t("maps.unit.km", count=t.number(km, 1))),
    ]
    details = [
        (
            t("maps.row.stop", n=n),
            f"{words.when(s.arrival)} {node_names.get(s.node_id, '') or s.node_id}: {words.cargo_text(s.deliver)}",
        )
        for n, s in enumerate(drops, start=1)
    ]
    geometry = shapely.MultiLineString([g for _, g in parts])
    return map_feature(
        geometry,
        route.vehicle_id,
        rows,
        details,
        s=dict(style),
        a=1,
        id=f"trip:{route.vehicle_id}#{route.trip}",
    )


def _node_features(
    frame: pd.DataFrame,
    info: pd.DataFrame,
    visits: Mapping[str, list[tuple[Route, Stop]]],
    words: Wording,
    unserved: Mapping[str, str],
) -> list[dict]:
    """One point feature per node of `frame` with a location: name, popup rows and label zoom."""
    out = []
    for node_id, row in frame.iterrows():
        if row.geometry is None or row.geometry.is_empty:
            continue
        rows, details = _node_rows(
            str(node_id), row, info, visits.get(str(node_id), []), words, unserved.get(str(node_id))
        )
        kind = _text(row.get("kind"))
        zoom_key = "sea_port" if kind == "port" and row.get("port_type") == "sea" else kind
        out.append(
            map_feature(
                row.geometry,
                _text(row["name"]) or str(node_id),
                rows,
                details,
                id=str(node_id),
                lz=LABEL_ZOOM.get(zoom_key),
            )
        )
    return out


# (layer name key, point style, swatch) of the KPU map's node layers, in drawing order
_KPU_POINT_LAYERS = (
    ("maps.layer.ports", "port", "#4dd0e1"),
    ("maps.layer.pps", "pps", "#66bb6a"),
    ("maps.layer.ppk", "ppk", "#ffd54f"),
    ("maps.layer.warehouses", "warehouse", "#6a3d9a"),
    ("maps.layer.unserved", "unserved", "#f06292"),
)


def _point_layers(
    nodes: pd.DataFrame,
    info: pd.DataFrame,
    visits: Mapping[str, list[tuple[Route, Stop]]],
    words: Wording,
    unserved: Mapping[str, str],
    lanal: bool,
) -> list[MapLayer]:
    """The node layers: for the Lanal, sea ports and the stops of sea trips; for the KPU, every port, PPS, PPK
    and warehouse, and the unserved stops apart."""
    t = words.lang

    def layer(key: str, style: str, swatch: str, frame: pd.DataFrame) -> MapLayer:
        features = _node_features(frame, info, visits, words, unserved)
        return MapLayer(t(key), "point", features, POINT_STYLES[style], swatch=swatch)

    kind = nodes["kind"]
    visited = nodes.index.isin(list(visits))
    if lanal:
        return [
            layer(
                "maps.layer.sea_ports",
                "port",
                "#4dd0e1",
                nodes[(kind == "port") & ((nodes["port_type"] == "sea") | visited)],
            ),
            layer("maps.layer.sea_stops", "pps", "#66bb6a", nodes[(kind != "port") & visited]),
        ]
    is_unserved = nodes.index.isin(list(unserved))
    frames = {
        "port": nodes[kind == "port"],
        "pps": nodes[(kind == "pps") & ~is_unserved],
        "ppk": nodes[(kind == "ppk") & ~is_unserved],
        "warehouse": nodes[kind == "warehouse"],
        "unserved": nodes[is_unserved],
    }
    return [
        layer(key, style, swatch, frames[style])
        for key, style, swatch in _KPU_POINT_LAYERS
        if style != "unserved" or unserved
    ]


def _bounds(features: Iterable[dict]) -> tuple[float, float, float, float] | None:
    coords = [
        xy for f in features for xy in shapely.get_coordinates(shapely.geometry.shape(f["geometry"])).tolist()
    ]
    if not coords:
        return None
    array = np.asarray(coords)
    (min_x, min_y), (max_x, max_y) = array.min(axis=0), array.max(axis=0)
    return float(min_x), float(min_y), float(max_x), float(max_y)


def _legend(layers: Sequence[MapLayer], words: Wording, lanal: bool) -> list[tuple[str, str, dict[str, Any]]]:
    entries: list[tuple[str, str, dict[str, Any]]] = []
    seen: set[str] = set()
    for layer in layers:
        if layer.label in seen:
            continue
        seen.add(layer.label)
        symbol = {"polygon": "box", "line": "line", "point": "dot", "route": "route"}[layer.kind]
        entries.append((symbol, layer.label, layer.style))
    note = words.lang("maps.legend.ship_routes" if lanal else "maps.legend.routes")
    entries.append(("route", note, {**ROUTE_STYLE, "color": "#555555"}))
    return entries


# ---------------------------------------------------------------- time control and trip table


def _timeline(plan: Plan, routes: Sequence[Route]) -> tuple[datetime, int]:
    """The start (local midnight of the first distribution day) and length in minutes of the time control:
    whole days from the calendar start to the PPS deadline, longer if a trip ends later."""
    start = plan.calendar.start.astimezone(TIMEZONE).replace(hour=0, minute=0, second=0, microsecond=0)
    last = max([plan.calendar.pps_deadline, *(r.stops[-1].arrival for r in routes if r.stops)])
    days = max(1, -(-int((last - start).total_seconds()) // 86400))
    return start, days * 24 * 60


def _minutes(moment: datetime, start: datetime) -> int:
    return int(round((moment - start).total_seconds() / 60))


def _segment_points(geometries: Sequence[LineString], leave: int, arrive: int) -> list[list[float]]:
    """[minute, lon, lat] along the geometries, the time spread by distance between `leave` and `arrive`."""
    coords: list[tuple[float, float]] = []
    for geometry in geometries:
        simplified = geometry.simplify(TRACK_TOLERANCE_DEG)
        coords += [tuple(xy) for xy in shapely.get_coordinates(simplified).tolist()]
    if len(coords) < 2:
        return []
    array = np.asarray(coords)
    steps = np.hypot(*np.diff(array, axis=0).T)
    cumulative = np.concatenate([[0.0], np.cumsum(steps)])
    share = cumulative / cumulative[-1] if cumulative[-1] > 0 else np.zeros(len(coords))
    times = leave + share * (arrive - leave)
    return [
        [int(round(m)), round(x, TRACK_DECIMALS), round(y, TRACK_DECIMALS)]
        for m, (x, y) in zip(times, coords, strict=True)
    ]


def route_track(route: Route, legs: pd.DataFrame, nodes: pd.DataFrame, start: datetime) -> list[list[float]]:
    """Where the vehicle of `route` is over time: [minute since `start`, lon, lat] points, waiting at each
    stop from its arrival to its departure and moving along the legs between stops at an even pace."""
    oriented = _oriented_legs(route, legs)
    points: list[list[float]] = []
    cursor = 0
    for index, stop in enumerate(route.stops):
        where = nodes.at[stop.node_id, "geometry"] if stop.node_id in nodes.index else None
        if where is not None and not where.is_empty:
            x, y = round(where.x, TRACK_DECIMALS), round(where.y, TRACK_DECIMALS)
            points += [[_minutes(stop.arrival, start), x, y], [_minutes(stop.departure, start), x, y]]
        if index + 1 >= len(route.stops):
            break
        target = route.stops[index + 1].node_id
        segment: list[LineString] = []
        while cursor < len(oriented):
            _, geometry, reached = oriented[cursor]
            cursor += 1
            if geometry is not None:
                segment.append(geometry)
            if reached == target:
                break
        points += _segment_points(
            segment, _minutes(stop.departure, start), _minutes(route.stops[index + 1].arrival, start)
        )
    out: list[list[float]] = []
    for point in points:
        if not out or point != out[-1]:
            out.append(point if not out or point[0] >= out[-1][0] else [out[-1][0], *point[1:]])
    return out


def _tracks(
    routes: Sequence[Route], legs: pd.DataFrame, nodes: pd.DataFrame, start: datetime, highlight: str | None
) -> list[dict[str, Any]]:
    """One track per vehicle (its trips one after the other) with its colour, for the time control."""
    colours = vehicle_colours(routes)
    by_vehicle: dict[str, list[Route]] = {}
    for route in sorted(routes, key=lambda r: (r.vehicle_id, r.trip)):
        by_vehicle.setdefault(route.vehicle_id, []).append(route)
    tracks = []
    for vehicle, trips in by_vehicle.items():
        points = [p for route in trips for p in route_track(route, legs, nodes, start)]
        if not points:
            continue
        lit = highlight is None or trips[0].kabupaten_code == highlight
        tracks.append(
            {"v": vehicle, "c": colours[vehicle] if lit else FADED_ROUTE_STYLE["color"], "p": points}
        )
    return tracks


def _time_control(
    plan: Plan,
    routes: Sequence[Route],
    legs: pd.DataFrame,
    nodes: pd.DataFrame,
    words: Wording,
    highlight: str | None,
) -> dict[str, Any]:
    start, length = _timeline(plan, routes)
    days = [words.lang.date(start + timedelta(days=d)) for d in range(length // 1440)]
    first = min((_minutes(r.stops[0].departure, start) for r in routes if r.stops), default=0)
    return {
        "days": days,
        "length": length,
        "step": TIME_STEP_MIN,
        "initial": min(
            length, first - first % TIME_STEP_MIN + 2 * TIME_STEP_MIN
        ),  # the first trips under way
        "separator": "." if words.lang.code == "id" else ":",
        "zone": ZONE_LABEL,
        "tracks": _tracks(routes, legs, nodes, start, highlight),
    }


def sea_trip_rows(routes: Sequence[Route], nodes: pd.DataFrame, words: Wording) -> list[dict[str, Any]]:
    """The Lanal table: one row per sea trip: vessel, departure, each stop it serves (arrival, departure,
    cargo handed over), the cargo in packages and kg, and the return to its base."""
    t = words.lang

    def name(node_id: str) -> str:
        return _text(nodes.at[node_id, "name"]) if node_id in nodes.index else node_id

    rows = []
    for route in sorted(
        routes, key=lambda r: (r.stops[0].departure if r.stops else datetime.max, r.vehicle_id, r.trip)
    ):
        if not route.stops:
            continue
        calls = [s for s in route.stops[1:-1] if s.node_id != route.base or any(s.deliver.values())]
        stops = [
            t(
                "maps.lanal.stop",
                place=name(s.node_id),
                arrival=words.when(s.arrival),
                departure=t.time(s.departure),
                cargo=words.cargo_text(s.deliver),
            )
            for s in calls
        ]
        cargo: dict[str, int] = {}
        for s in route.stops:
            for item_id, qty in s.deliver.items():
                cargo[item_id] = cargo.get(item_id, 0) + qty
        family = vehicle_family(route.vehicle_type)
        rows.append(
            {
                "id": f"trip:{route.vehicle_id}#{route.trip}",
                "cells": [
                    [route.vehicle_id, f"{t(f'maps.vehicle.{family}')} ({route.vehicle_type})"],
                    [name(route.base), words.when(route.stops[0].departure)],
                    stops,
                    [words.cargo_text(cargo)],
                    [name(route.stops[-1].node_id), words.when(route.stops[-1].arrival)],
                ],
            }
        )
    return rows


def _sea_trip_table(routes: Sequence[Route], nodes: pd.DataFrame, words: Wording) -> dict[str, Any]:
    t = words.lang
    columns = ["vessel", "departure", "stops", "cargo", "return"]
    return {
        "title": t("maps.lanal.table"),
        "columns": [t(f"maps.lanal.{c}") for c in columns],
        "rows": sea_trip_rows(routes, nodes, words),
        "empty": t("maps.lanal.none"),
    }


# ---------------------------------------------------------------- building a map


def build_map_content(
    plan: Plan,
    network: Any,
    node_info: pd.DataFrame | None = None,
    audience: Audience = "kpu",
    *,
    items: Any = None,
    boundaries: Boundaries | None = None,
    changed: Collection[tuple[str, int]] = (),
    lang: str = DEFAULT_LANGUAGE,
    highlight: str | None = None,
) -> MapContent:
    """Everything the page draws, as plain data (no HTML yet).

    `changed`: (vehicle id, trip) of routes a re-plan changed, drawn under a wide orange band.
    `lang`: language of the map's words ("id" or "en"). `highlight`: a kabupaten code whose routes are
    drawn wide in their own layer while the others fade (InputError if the plan has no route there).
    """
    if audience not in AUDIENCES:
        raise InputError(f"unknown audience {audience!r}: choose one of {', '.join(AUDIENCES)}")
    t = language(lang)
    check_plan_references(plan, network)
    if highlight is not None and highlight not in {r.kabupaten_code for r in plan.routes}:
        raise InputError(f"--kabupaten {highlight}: the plan has no route in that kabupaten")
    nodes, legs = _plan_area(plan, network.nodes, network.legs)
    lanal = audience == "lanal"
    words = Wording(t, item_infos(items, plan), _loose_items(items))
    node_names = {str(k): _text(v) for k, v in nodes["name"].items()}
    blocked_ids = set(plan.blocked_legs) | set(legs.index[legs["status"] == "blocked"])
    routes = [r for r in plan.routes if _is_ship(r, legs)] if lanal else list(plan.routes)
    unserved = {} if lanal else {u.node_id: f"{u.reason}: {u.detail}".rstrip(": ") for u in plan.unserved}

    changed_routes = [r for r in routes if (r.vehicle_id, r.trip) in set(changed)]
    changed_features = [
        f
        for r in changed_routes
        if (f := _route_feature(r, legs, node_names, CHANGED_ROUTE_STYLE, words)) is not None
    ]
    changed_layer = MapLayer(
        t("maps.layer.changed"),
        "line",
        changed_features,
        CHANGED_ROUTE_STYLE,
        swatch=CHANGED_ROUTE_STYLE["color"],
    )
    layers = [
        *boundary_layers(boundaries, lanal, t),
        *_leg_layers(legs, blocked_ids, node_names, lanal, words),
        *([changed_layer] if changed_routes else []),
        *_route_layers(routes, legs, node_names, words, highlight),
        *_point_layers(nodes, node_info_table(node_info), _stop_visits(routes), words, unserved, lanal),
    ]
    shown = [f for layer in layers if layer.kind != "polygon" for f in layer.features]
    if highlight is not None:  # open on the highlighted kabupaten's routes
        label = t("maps.layer.highlight", code=highlight)
        shown = [f for layer in layers if layer.label == label for f in layer.features] or shown
    everything = [f for layer in layers for f in layer.features]
    bounds = _bounds(shown) or _bounds(everything) or (116.0, -2.5, 119.0, 2.5)
    vehicles = len({r.vehicle_id for r in routes})
    title = t("maps.title.lanal" if lanal else "maps.title.kpu", scenario=plan.scenario.name)
    subtitle = t(
        "maps.subtitle.lanal" if lanal else "maps.subtitle.kpu",
        trips=t.number(len(routes)),
        vehicles=t.number(vehicles),
        start=words.when(plan.calendar.start),
        end=words.when(plan.calendar.pps_deadline),
    )
    if unserved:
        subtitle += "; " + t("maps.subtitle.unserved", count=t.number(len(unserved)))
    if highlight is not None:
        subtitle += "; " + t("maps.layer.highlight", code=highlight)
    extra: dict[str, Any] = {"time": _time_control(plan, routes, legs, nodes, words, highlight)}
    if lanal:
        extra["table"] = _sea_trip_table(routes, nodes, words)
    return MapContent(title, subtitle, layers, bounds, _legend(layers, words, lanal), t.code, extra)


def kabupaten_plan(plan: Plan, code: str) -> Plan:
    """The part of `plan` one kabupaten runs: its routes and its unserved stops."""
    return plan.model_copy(
        update={
            "routes": [r for r in plan.routes if r.kabupaten_code == code],
            "unserved": [u for u in plan.unserved if u.kabupaten_code == code],
        }
    )


def plan_kabupaten(plan: Plan) -> list[str]:
    """The kabupaten codes the plan has routes or unserved stops in, sorted."""
    return sorted({r.kabupaten_code for r in plan.routes} | {u.kabupaten_code for u in plan.unserved})


# ---------------------------------------------------------------- the page


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
    t = language(content.lang)
    rows = "".join(
        f'<div class="kpu-row">{_symbol_svg(symbol, style)}<span>{html.escape(label)}</span></div>'
        for symbol, label, style in content.legend
    )
    return (
        f"<details open><summary>{html.escape(content.title)}</summary>"
        f'<div class="kpu-sub">{html.escape(content.subtitle)}</div>{rows}'
        f'<div class="kpu-sub">{html.escape(t("maps.legend.hint"))}</div></details>'
    )


def _page_words(lang: Language) -> dict[str, str]:
    """The words the page script writes itself (plain text, inserted as text)."""
    keys = (
        "offline",
        "tiles",
        "items",
        "time",
        "moving",
        "positions",
        "play",
        "pause",
        "table_hide",
        "table_show",
    )
    return {key: lang(f"maps.page.{key}") for key in keys}


def _page_data(content: MapContent) -> dict[str, Any]:
    t = language(content.lang)
    words = _page_words(t)
    return {
        "offlineLabel": words["offline"],
        "tiles": {**ONLINE_TILES, "label": words["tiles"]},
        "words": words,
        "bounds": list(content.bounds),
        "legendHtml": _legend_html(content),
        "layers": [
            {
                "label": _layer_label_html(layer),
                "kind": layer.kind,
                "style": layer.style,
                "show": layer.show,
                "interactive": layer.interactive,
                "features": layer.features,
            }
            for layer in content.layers
        ],
        **content.extra,
    }


def _page_asset(name: str) -> str:
    """The page script or stylesheet shipped in planner/data."""
    return (resources.files("planner") / "data" / name).read_text(encoding="utf-8")


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
            "page_css": _page_asset("map-page.css"),
            "leaflet_js": leaflet_js,
            "page_js": _page_asset("map-page.js").strip(),
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
    items: Sequence[Item] | Any = None,
    boundaries: Boundaries | None = None,
    changed: Collection[tuple[str, int]] = (),
    lang: str = DEFAULT_LANGUAGE,
    highlight: str | None = None,
) -> Path:
    """Write the route map of `plan` for `audience` ('kpu' or 'lanal') as one offline HTML file.

    `lang`: "id" (default) or "en"; `highlight`: a kabupaten code whose routes stand out.
    """
    content = build_map_content(
        plan,
        network,
        node_info,
        audience,
        items=items,
        boundaries=boundaries,
        changed=changed,
        lang=lang,
        highlight=highlight,
    )
    return write_text(out_path, render_map_html(content))


def write_kabupaten_maps(
    plan: Plan,
    network: Any,
    node_info: pd.DataFrame | None,
    folder: str | Path,
    *,
    items: Any = None,
    boundaries: Boundaries | None = None,
    changed: Collection[tuple[str, int]] = (),
    lang: str = DEFAULT_LANGUAGE,
) -> list[Path]:
    """One small KPU map per kabupaten of the plan, `<folder>/map-<code>.html` (e.g. maps/map-64.02.html),
    with that kabupaten's routes, stops and kecamatan only, so an officer can send it on a phone.
    Maps of kabupaten no longer in the plan are removed. Returns the paths written."""
    folder = Path(folder)
    written = [
        write_map(
            kabupaten_plan(plan, code),
            network,
            node_info,
            "kpu",
            folder / f"map-{code}.html",
            items=items,
            boundaries=boundaries_of_kabupaten(boundaries, code),
            changed=changed,
            lang=lang,
        )
        for code in plan_kabupaten(plan)
    ]
    for stale in folder.glob("map-*.html"):
        if stale not in written:
            stale.unlink()
    return written
