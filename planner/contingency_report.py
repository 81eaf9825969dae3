"""What a contingency analysis hands over: the map of the tested legs coloured by the impact of their loss
(contingency-map.html, for the planning office, in English) and the one-page summary for KPU and Lanal
(ringkasan.html, "20 ruas paling kritis", Indonesian by default). Renderers only: the analysis is
planner.contingency, whose ranked rows (IMPACT_COLUMNS) come in here.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import shapely

from planner.fileio import write_text
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
from planner.network import Network, legs_in_kabupaten
from planner.nodes import MODES, case_legs
from planner.plan import UNSERVED_REASONS
from planner.scenario import ScenarioInputs

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
    """The worst effect of a leg's loss: cuts_off (PPS unreachable), late, extra (hours or km), none, unused."""
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
    parts = [legs.at[leg, "geometry"] for leg in case_legs(case_id)]
    parts = [g for g in parts if g is not None and not g.is_empty]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else shapely.union_all(parts)


def _impact_features(
    rows: Sequence[Mapping[str, Any]], legs: pd.DataFrame, names: Mapping[str, str]
) -> tuple[dict[str, list[dict]], dict[str, list[str]]]:
    """The tested legs as map features per impact class (the top LABELLED_TOP labelled), and per PPS the
    cases that cut it off."""
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
    return by_class, cut_by


def _leg_features(
    legs: pd.DataFrame, leg_ids: Iterable[str], status: str, names: Mapping[str, str]
) -> list[dict]:
    out = []
    for leg_id in sorted(leg_ids):
        leg = legs.loc[leg_id]
        if leg.geometry is None or leg.geometry.is_empty:
            continue
        rows = [
            ("Mode", str(leg["mode"])),
            ("From", f"{names.get(leg['from_node'], '')} ({leg['from_node']})"),
            ("To", f"{names.get(leg['to_node'], '')} ({leg['to_node']})"),
            ("Status", status),
        ]
        out.append(map_feature(leg.geometry, str(leg_id), rows))
    return out


def _cut_off_layer(
    nodes: pd.DataFrame, cut_by: Mapping[str, list[str]], names: Mapping[str, str]
) -> MapLayer:
    features = [
        map_feature(
            node.geometry,
            names.get(str(node_id), str(node_id)),
            [("Node", str(node_id)), ("Cut off when blocked", " ".join(cut_by[str(node_id)]))],
            id=str(node_id),
        )
        for node_id, node in nodes.iterrows()
        if node.geometry is not None and not node.geometry.is_empty
    ]
    style = POINT_STYLES["unserved"]
    return MapLayer("PPS a single leg can cut off", "point", features, style, swatch=style["fillColor"])


def _bounds_of(geometries: Iterable[Any], fallback: Iterable[Any]) -> tuple[float, float, float, float]:
    """The box around `geometries`, or around `fallback` (the scenario's nodes) when there are none."""
    shown = [g for g in geometries if g is not None and not g.is_empty]
    if not shown:
        shown = [g for g in fallback if g is not None and not g.is_empty]
    min_x, min_y, max_x, max_y = (float(v) for v in shapely.total_bounds(shown))
    return min_x, min_y, max_x, max_y


def contingency_map_content(
    rows: Sequence[Mapping[str, Any]], network: Network, inputs: ScenarioInputs
) -> MapContent:
    """Tested legs coloured by the impact of their loss, the PPS they cut off, and the scenario's blocked legs."""
    legs, nodes = network.legs, network.nodes
    names = {str(k): str(v) for k, v in nodes["name"].items()}
    by_class, cut_by = _impact_features(rows, legs, names)
    tested = {leg for row in rows for leg in case_legs(row["leg_id"])}
    area = legs_in_kabupaten(network, inputs.kabupaten)
    english = language("en")  # the contingency map is the planning office's own analysis
    layers = list(
        boundary_layers(
            load_boundaries(network.source) if network.source else None, lanal=False, lang=english
        )
    )
    untested = _leg_features(legs, (leg for leg in area if leg not in tested), "open, not tested", names)
    layers.append(
        MapLayer(
            "Legs not tested", "line", untested, UNTESTED_STYLE, show=False, swatch=UNTESTED_STYLE["color"]
        )
    )
    for name, label, style in reversed(IMPACT_CLASSES):  # the worst drawn last, on top
        count = len(by_class[name])
        layers.append(
            MapLayer(
                f"{label} ({count})", "line", by_class[name], style, show=count > 0, swatch=style["color"]
            )
        )
    blocked = _leg_features(legs, legs.index[legs["status"] == "blocked"], "BLOCKED in the scenario", names)
    blocked_style = LEG_STYLES["blocked"]
    layers.append(
        MapLayer(
            "Blocked in the scenario",
            "line",
            blocked,
            blocked_style,
            swatch=blocked_style["color"],
            dashed=True,
        )
    )
    cut_nodes = nodes.loc[sorted(cut_by)]
    layers.append(_cut_off_layer(cut_nodes, cut_by, names))
    scenario_nodes = nodes[nodes["kabupaten_code"].isin(inputs.kabupaten)].geometry
    bounds = _bounds_of(
        [*(legs.at[leg, "geometry"] for leg in sorted(tested)), *cut_nodes.geometry], scenario_nodes
    )
    legend = [
        (
            "box" if layer.kind == "polygon" else "dot" if layer.kind == "point" else "line",
            layer.label,
            layer.style,
        )
        for layer in layers
    ]
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[impact_class(row)] += 1
    subtitle = (
        f"{len(rows)} legs tested, each coloured by the worst effect of its loss: {counts['cuts_off']} cut off "
        f"PPS, {counts['late']} make PPS late, {counts['extra']} only cost extra hours or km, "
        f"{counts['none'] + counts['unused']} cost nothing."
    )
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
    """contingency-map.html: the tested legs by impact (contingency_map_content), offline."""
    return write_text(path, render_map_html(contingency_map_content(rows, network, inputs)))
