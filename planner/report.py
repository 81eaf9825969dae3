"""Manifests, kabupaten summaries and the schedule chart: what a driver, a boat crew or an officer carries.

Plain data in (a Plan, its Network, the item catalog, TPS/DPT per node), files out:

    <out_dir>/manifests/<vehicle>.csv and .xlsx   surat jalan per vehicle: every stop in order, arrival time,
                                                  the quantity of each item, trip totals, weight and volume
    <out_dir>/kabupaten/<code>-summary.xlsx       per kabupaten: vehicles, deliveries per PPK/PPS, unserved
    <out_dir>/kabupaten/<code>-schedule.png       Gantt chart of the kabupaten's vehicles
    <out_dir>/schedule.png                        Gantt chart of every vehicle over the distribution days

The CSV columns of items are the catalog item ids (as in plan.json); the XLSX headers show the item names.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from planner.catalog import Item
from planner.errors import InputError
from planner.fileio import FORMULA_STARTS, write_bytes, write_csv, write_with
from planner.plan import Plan, Route

ACTIVITY_UNLOAD = "unload"
ACTIVITY_LOAD = "load"
ACTIVITY_PASS = "stop"
ACTIVITY_TRIP_TOTAL = "trip total"
ACTIVITY_TOTAL = "total"
_XLSX_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: the same plan gives the same workbook bytes
_NIGHT_START_HOUR = 18
_NIGHT_END_HOUR = 6


# ---------------------------------------------------------------- plain inputs


def _field(entry: Any, name: str) -> Any:
    return entry.get(name) if isinstance(entry, Mapping) else getattr(entry, name, None)


def item_infos(items: Any, plan: Plan | None = None) -> list[Item]:
    """Normalise a catalog (planner.catalog items, dicts, or a DataFrame with id, name, unit_kg, unit_m3) to
    catalog items; a weight or volume not given is NaN (Item.weight_known is False).

    Catalog order is kept; item ids the plan moves that the catalog lacks are appended (named by their id),
    so a manifest never hides a quantity.
    """
    if items is None:
        entries: list[Any] = []
    elif isinstance(items, pd.DataFrame):
        entries = items.to_dict("records")
    else:
        entries = list(items)
    infos: list[Item] = []
    for entry in entries:
        if isinstance(entry, Item):
            infos.append(entry)
            continue
        item_id = str(_field(entry, "id"))
        name = _field(entry, "name")
        infos.append(
            Item(
                item_id, str(name) if name else item_id, _number(entry, "unit_kg"), _number(entry, "unit_m3")
            )
        )
    known = {info.id for info in infos}
    if plan is not None:
        for item_id in sorted(plan_item_ids(plan) - known):
            infos.append(Item(item_id, item_id, math.nan, math.nan))
    return infos


def _number(entry: Any, name: str) -> float:
    value = _field(entry, name)
    return math.nan if value is None else float(value)


def plan_item_ids(plan: Plan) -> set[str]:
    """Every item id the plan loads or delivers."""
    return {item for route in plan.routes for stop in route.stops for item in (*stop.deliver, *stop.load)}


def node_info_table(node_info: pd.DataFrame | None) -> pd.DataFrame:
    """TPS and DPT per node id (index node_id, int columns tps and dpt); empty when none is given.

    Accepts the Demand tables (pps and ppk concatenated) or any frame with node_id (column or index), tps, dpt.
    """
    if node_info is None or len(node_info) == 0:
        return pd.DataFrame({"tps": pd.Series(dtype="Int64"), "dpt": pd.Series(dtype="Int64")})
    frame = node_info if "node_id" in node_info.columns else node_info.rename_axis("node_id").reset_index()
    missing = [c for c in ("tps", "dpt") if c not in frame.columns]
    if missing:
        raise InputError(f"node info lacks column(s) {', '.join(missing)}", source="node info")
    frame = frame.drop_duplicates("node_id").set_index("node_id")[["tps", "dpt"]]
    return frame.astype("Int64")


def check_plan_references(plan: Plan, network: Any) -> None:
    """InputError naming every node and leg the plan uses that the network lacks (a plan made on another network)."""
    nodes, legs = network.nodes.index, network.legs.index
    problems: list[str] = []
    for route in plan.routes:
        where = f"route {route.vehicle_id} trip {route.trip}"
        for node_id in dict.fromkeys([route.base, *(s.node_id for s in route.stops)]):
            if node_id not in nodes:
                problems.append(f"{where}: node {node_id!r} is not in the network")
        for leg_id in dict.fromkeys(route.legs):
            if leg_id not in legs:
                problems.append(f"{where}: leg {leg_id!r} is not in the network")
    for leg_id in plan.blocked_legs:
        if leg_id not in legs:
            problems.append(f"blocked_legs: leg {leg_id!r} is not in the network")
    if problems:
        source = getattr(network, "source", None)
        raise InputError(
            f"the plan does not match the network {source or ''}".rstrip(),
            source=plan.network,
            problems=problems,
        )


# ---------------------------------------------------------------- tables


def _weights(quantities: Mapping[str, int], items: Sequence[Item]) -> tuple[float | None, float | None]:
    units = {item.id: item for item in items}
    if any(not units[i].weight_known for i in quantities if i in units):
        return None, None
    kg = sum(q * units[i].unit_kg for i, q in quantities.items() if i in units)
    m3 = sum(q * units[i].unit_m3 for i, q in quantities.items() if i in units)
    return round(kg, 3), round(m3, 4)


def _node_attr(network: Any, node_id: str, column: str) -> str:
    nodes = network.nodes
    if node_id in nodes.index and column in nodes.columns:
        value = nodes.at[node_id, column]
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return ""


def _local(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def vehicle_routes(plan: Plan) -> dict[str, list[Route]]:
    """Routes of each vehicle in trip order, vehicles sorted by id."""
    grouped: dict[str, list[Route]] = {}
    for route in plan.routes:
        grouped.setdefault(route.vehicle_id, []).append(route)
    return {
        vehicle: sorted(
            routes, key=lambda r: (r.stops[0].arrival if r.stops else plan.calendar.start, r.trip)
        )
        for vehicle, routes in sorted(grouped.items())
    }


def route_km(route: Route, network: Any) -> float:
    """km of a route's legs (legs the network lacks count 0), rounded to 10 m."""
    legs = network.legs
    return round(float(sum(legs.at[leg, "length_km"] for leg in route.legs if leg in legs.index)), 2)


def kit_numbers_text(numbers: Sequence[int]) -> str:
    """TPS numbers as short text: [1, 2, 3, 4, 7] -> '1-4, 7'; empty for none."""
    runs: list[list[int]] = []
    for n in sorted(set(numbers)):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in runs)


MANIFEST_COLUMNS = [
    "vehicle_id",
    "vehicle_type",
    "trip",
    "tier",
    "seq",
    "activity",
    "node_id",
    "code",
    "name",
    "kabupaten_code",
    "tps",
    "dpt",
    "tps_kits",
    "arrival",
    "departure",
]  # then one column per item, weight_kg and volume_m3


def manifest_frame(
    routes: Sequence[Route], network: Any, items: Sequence[Item], node_info: pd.DataFrame
) -> pd.DataFrame:
    """The surat jalan of one vehicle: one row per stop activity in order, a total per trip and a grand total.

    activity is `unload` (items delivered at the stop), `load` (items taken on at a transfer point), `stop`
    (the base or a pass-through stop), `trip total` or `total` (the sums of what was unloaded).
    `tps_kits` names the TPS kits handed over at a PPS by their TPS numbers within the desa ("1-4, 7").
    """
    ids = [item.id for item in items]
    rows: list[dict[str, Any]] = []
    grand: dict[str, int] = dict.fromkeys(ids, 0)
    for route in routes:
        trip_rows, trip_sum = _trip_manifest_rows(route, network, items, node_info)
        rows += trip_rows
        for item_id, qty in trip_sum.items():
            grand[item_id] = grand.get(item_id, 0) + qty
    if routes:
        first = routes[0]
        head = {"vehicle_id": first.vehicle_id, "vehicle_type": first.vehicle_type}
        rows.append(
            _quantity_row(head | {"activity": ACTIVITY_TOTAL, "name": "total delivered"}, grand, items)
        )
    frame = pd.DataFrame(rows).reindex(columns=[*MANIFEST_COLUMNS, *ids, "weight_kg", "volume_m3"])
    frame[ids] = frame[ids].fillna(0).astype(int)
    for column in ("trip", "tier", "seq", "tps", "dpt"):
        frame[column] = frame[column].astype("Int64")
    return frame


def _trip_manifest_rows(
    route: Route, network: Any, items: Sequence[Item], node_info: pd.DataFrame
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The manifest rows of one trip (each stop's activities, then the trip total) and what it delivered."""
    trip = {
        "vehicle_id": route.vehicle_id,
        "vehicle_type": route.vehicle_type,
        "trip": route.trip,
        "tier": route.tier,
    }
    rows: list[dict[str, Any]] = []
    trip_sum: dict[str, int] = dict.fromkeys((item.id for item in items), 0)
    for seq, stop in enumerate(route.stops, start=1):
        common = trip | {
            "seq": seq,
            "node_id": stop.node_id,
            "code": _node_attr(network, stop.node_id, "code"),
            "name": _node_attr(network, stop.node_id, "name"),
            "kabupaten_code": _node_attr(network, stop.node_id, "kabupaten_code"),
            "tps": node_info["tps"].get(stop.node_id, pd.NA),
            "dpt": node_info["dpt"].get(stop.node_id, pd.NA),
            "tps_kits": kit_numbers_text(stop.tps_kits),
            "arrival": _local(stop.arrival),
            "departure": _local(stop.departure),
        }
        activities = [(ACTIVITY_LOAD, stop.load), (ACTIVITY_UNLOAD, stop.deliver)]
        present = [(a, q) for a, q in activities if any(q.values())] or [(ACTIVITY_PASS, {})]
        for activity, quantities in present:
            rows.append(_quantity_row(common | {"activity": activity}, quantities, items))
        for item_id, qty in stop.deliver.items():
            trip_sum[item_id] = trip_sum.get(item_id, 0) + qty
    total = trip | {"activity": ACTIVITY_TRIP_TOTAL, "name": f"trip {route.trip} delivered"}
    rows.append(_quantity_row(total, trip_sum, items))
    return rows, trip_sum


def _quantity_row(base: dict[str, Any], quantities: Mapping[str, int], items: Sequence[Item]) -> dict:
    row = dict(base)
    row.update({item.id: int(quantities.get(item.id, 0)) for item in items})
    row["weight_kg"], row["volume_m3"] = _weights(quantities, items)
    return row


def deliveries_frame(
    plan: Plan, network: Any, items: Sequence[Item], node_info: pd.DataFrame
) -> pd.DataFrame:
    """One row per node that receives items: first arrival, vehicles, quantity of each item, weight, volume."""
    ids = [item.id for item in items]
    received: dict[str, dict[str, Any]] = {}
    for route in plan.routes:
        for stop in route.stops:
            if not any(stop.deliver.values()):
                continue
            entry = received.setdefault(
                stop.node_id,
                {"arrival": stop.arrival, "vehicles": [], "kabupaten": route.kabupaten_code, "q": {}},
            )
            entry["arrival"] = min(entry["arrival"], stop.arrival)
            if route.vehicle_id not in entry["vehicles"]:
                entry["vehicles"].append(route.vehicle_id)
            for item_id, qty in stop.deliver.items():
                entry["q"][item_id] = entry["q"].get(item_id, 0) + qty
    rows = []
    for node_id in sorted(received):
        entry = received[node_id]
        rows.append(
            _quantity_row(
                {
                    "kabupaten_code": entry["kabupaten"],
                    "node_id": node_id,
                    "kind": _node_attr(network, node_id, "kind"),
                    "code": _node_attr(network, node_id, "code"),
                    "name": _node_attr(network, node_id, "name"),
                    "tps": node_info["tps"].get(node_id, pd.NA),
                    "dpt": node_info["dpt"].get(node_id, pd.NA),
                    "first_arrival": _local(entry["arrival"]),
                    "vehicles": ", ".join(entry["vehicles"]),
                },
                entry["q"],
                items,
            )
        )
    columns = [
        "kabupaten_code",
        "node_id",
        "kind",
        "code",
        "name",
        "tps",
        "dpt",
        "first_arrival",
        "vehicles",
        *ids,
        "weight_kg",
        "volume_m3",
    ]
    frame = pd.DataFrame(rows).reindex(columns=columns)
    frame[ids] = frame[ids].fillna(0).astype(int)
    return frame


def vehicles_frame(plan: Plan, network: Any, items: Sequence[Item]) -> pd.DataFrame:
    """One row per vehicle: trips, stops, km, first departure, last return, what it delivered."""
    ids = [item.id for item in items]
    rows = []
    for vehicle, routes in vehicle_routes(plan).items():
        delivered: dict[str, int] = {}
        for stop in (s for r in routes for s in r.stops):
            for item_id, qty in stop.deliver.items():
                delivered[item_id] = delivered.get(item_id, 0) + qty
        stops = [s for r in routes for s in r.stops]
        rows.append(
            _quantity_row(
                {
                    "kabupaten_code": routes[0].kabupaten_code,
                    "vehicle_id": vehicle,
                    "vehicle_type": routes[0].vehicle_type,
                    "base": routes[0].base,
                    "tiers": ", ".join(str(t) for t in sorted({r.tier for r in routes})),
                    "trips": len(routes),
                    "stops": sum(1 for s in stops if any(s.deliver.values())),
                    "km": round(sum(route_km(r, network) for r in routes), 2),
                    "first_departure": _local(min(s.departure for s in stops)) if stops else "",
                    "last_arrival": _local(max(s.arrival for s in stops)) if stops else "",
                },
                delivered,
                items,
            )
        )
    columns = [
        "kabupaten_code",
        "vehicle_id",
        "vehicle_type",
        "base",
        "tiers",
        "trips",
        "stops",
        "km",
        "first_departure",
        "last_arrival",
        *ids,
        "weight_kg",
        "volume_m3",
    ]
    frame = pd.DataFrame(rows).reindex(columns=columns)
    frame[ids] = frame[ids].fillna(0).astype(int)
    return frame


def unserved_frame(plan: Plan, network: Any) -> pd.DataFrame:
    """The unserved stops with their names, reasons and details (unserved sheet)."""
    rows = [
        {
            "kabupaten_code": u.kabupaten_code,
            "node_id": u.node_id,
            "name": _node_attr(network, u.node_id, "name"),
            "reason": u.reason,
            "detail": u.detail,
        }
        for u in plan.unserved
    ]
    return pd.DataFrame(rows, columns=["kabupaten_code", "node_id", "name", "reason", "detail"])


# ---------------------------------------------------------------- files


def safe_file_stem(text: str) -> str:
    """A file name stem from a vehicle id or code: `truck@wh:64.11#1` -> `truck_wh_64.11_1`."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "unnamed"
    return stem[:120]


def _unique_stems(keys: Iterable[str]) -> dict[str, str]:
    stems: dict[str, str] = {}
    used: set[str] = set()
    for key in keys:
        stem, n = safe_file_stem(key), 2
        candidate = stem
        while candidate.lower() in used:
            candidate, n = f"{stem}-{n}", n + 1
        used.add(candidate.lower())
        stems[key] = candidate
    return stems


def _normalised_zip(data: bytes, stamp: str) -> bytes:
    """Re-pack a zip (an .xlsx) with fixed timestamps so that the same content gives the same bytes.

    openpyxl stamps the save time into docProps/core.xml; `stamp` (W3CDTF) replaces it.
    """
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                    rb"\g<1>" + stamp.encode("ascii") + rb"\g<2>",
                    content,
                )
            fixed = zipfile.ZipInfo(info.filename, date_time=_XLSX_EPOCH)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            target.writestr(fixed, content)
    return out.getvalue()


def _write_workbook(workbook: Any, target: Path, moment: datetime) -> Path:
    utc = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    workbook.properties.creator = "planner"
    workbook.properties.created = utc
    workbook.properties.modified = utc
    workbook.properties.lastModifiedBy = "planner"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return write_bytes(target, _normalised_zip(buffer.getvalue(), utc.strftime("%Y-%m-%dT%H:%M:%SZ")))


def _sheet_from_frame(sheet: Any, frame: pd.DataFrame, header_row: int, headers: Sequence[str]) -> None:
    from openpyxl.styles import Font, PatternFill

    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDDDDD")
    for col, title in enumerate(headers, start=1):
        cell = text_cell(sheet, header_row, col, title)
        cell.font, cell.fill = bold, fill
    for r, values in enumerate(frame.itertuples(index=False), start=header_row + 1):
        for c, value in enumerate(values, start=1):
            text_cell(sheet, r, c, _cell(value))
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=1)
    for col, title in enumerate(headers, start=1):
        values = [str(title)] + [str(v) for v in frame.iloc[:, col - 1].tolist()[:500]]
        width = min(max(len(v) for v in values) + 2, 48)
        sheet.column_dimensions[sheet.cell(row=header_row, column=col).column_letter].width = width


def text_cell(sheet: Any, row: int, column: int, value: Any) -> Any:
    """Put `value` in a worksheet cell so that a text from data is never a formula.

    openpyxl stores a string starting with `=` as a formula; such a cell is made a string cell instead, and
    every text that a spreadsheet would read as a formula (=, +, -, @, TAB, CR) gets Excel's quote prefix,
    so it stays text even when someone edits the cell. Returns the cell.
    """
    cell = sheet.cell(row=row, column=column, value=value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        cell.data_type = "s"
        cell.quotePrefix = True
    return cell


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _display_headers(frame: pd.DataFrame, items: Sequence[Item]) -> list[str]:
    names = {item.id: item.name for item in items}
    return [names.get(c, c) for c in frame.columns]


def write_manifest_xlsx(
    frame: pd.DataFrame,
    routes: Sequence[Route],
    plan: Plan,
    items: Sequence[Item],
    network: Any,
    target: Path,
) -> Path:
    """The surat jalan workbook of one vehicle (A4 landscape, header rows, text cells only); returns the path."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Surat jalan"
    first = routes[0]
    base_name = _node_attr(network, first.base, "name")
    lines = [
        f"SURAT JALAN (manifest) - {first.vehicle_id}",
        f"Vehicle type: {first.vehicle_type}   Kabupaten: {first.kabupaten_code}   Base: {base_name} ({first.base})",
        f"Scenario: {plan.scenario.name}   Trips: {len(routes)}",
    ]
    for row, text in enumerate(lines, start=1):
        text_cell(sheet, row, 1, text).font = Font(bold=row == 1, size=13 if row == 1 else 11)
    header_row = len(lines) + 2
    _sheet_from_frame(sheet, frame, header_row, _display_headers(frame, items))
    bold = Font(bold=True)
    activity_col = list(frame.columns).index("activity")
    for r, activity in enumerate(frame.iloc[:, activity_col], start=header_row + 1):
        if activity in (ACTIVITY_TRIP_TOTAL, ACTIVITY_TOTAL):
            for c in range(1, len(frame.columns) + 1):
                sheet.cell(row=r, column=c).font = bold
    sign_row = header_row + len(frame) + 3
    sheet.cell(row=sign_row, column=1, value="Driver / crew: ____________________")
    sheet.cell(row=sign_row, column=8, value="Received by (PPK / PPS): ____________________")
    return _write_workbook(workbook, target, plan.calendar.start)


def write_summary_xlsx(
    sheets: Mapping[str, pd.DataFrame], title: str, plan: Plan, items: Sequence[Item], target: Path
) -> Path:
    """A workbook with one sheet per table of `sheets` (kabupaten summary); returns the path."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, frame in sheets.items():
        sheet = workbook.create_sheet(name[:31])
        text_cell(sheet, 1, 1, f"{title} - {name}").font = Font(bold=True, size=13)
        text_cell(sheet, 2, 1, f"Scenario: {plan.scenario.name}")
        _sheet_from_frame(sheet, frame, 4, _display_headers(frame, items))
    return _write_workbook(workbook, target, plan.calendar.start)


# ---------------------------------------------------------------- schedule chart


def _night_spans(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    day = start.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    spans = []
    while day < end:
        spans.append(
            (day + timedelta(hours=_NIGHT_START_HOUR), day + timedelta(days=1, hours=_NIGHT_END_HOUR))
        )
        day += timedelta(days=1)
    return spans


def _plain(text: str) -> str:
    """Text for matplotlib, which would read `$...$` as mathematics."""
    return text.replace("$", r"\$")


def _trip_bars(axes: Any, row: int, route: Route, colour: str) -> None:
    """One trip on the Gantt chart: a light bar from leaving the base to coming back, dark at busy stops."""
    if not route.stops:
        return
    begin = min(s.departure if s.node_id == route.base else s.arrival for s in route.stops)
    finish = max(s.arrival if s.node_id == route.base else s.departure for s in route.stops)
    axes.barh(row, finish - begin, left=begin, height=0.5, color=colour, alpha=0.45, zorder=2)
    for stop in route.stops:
        busy = any(stop.deliver.values()) or any(stop.load.values())
        if busy and stop.departure > stop.arrival:
            axes.barh(
                row, stop.departure - stop.arrival, left=stop.arrival, height=0.5, color=colour, zorder=3
            )


def plot_schedule(plan: Plan, target: str | Path, title: str, routes: Sequence[Route] | None = None) -> Path:
    """Gantt chart (PNG): one row per vehicle, a bar per trip, darker blocks at stops, nights shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    routes = list(plan.routes if routes is None else routes)
    by_vehicle: dict[str, list[Route]] = {}
    for route in sorted(routes, key=lambda r: (r.kabupaten_code, r.vehicle_id, r.trip)):
        by_vehicle.setdefault(route.vehicle_id, []).append(route)
    calendar = plan.calendar
    tz = calendar.start.tzinfo
    moments = [calendar.start, calendar.pps_deadline] + [
        t for r in routes for s in r.stops for t in (s.arrival, s.departure)
    ]
    first_day = min(moments).astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    last = max(moments).astimezone(tz)
    end = last.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    tier_colours = {1: "#1f78b4", 2: "#ff7f00"}
    height = min(max(2.5, 0.24 * len(by_vehicle) + 1.6), 600)
    figure, axes = plt.subplots(figsize=(13, height), dpi=90)
    for night_start, night_end in _night_spans(first_day, end):
        axes.axvspan(night_start, night_end, color="#eeeeee", zorder=0, linewidth=0)
    for row, vehicle_routes in enumerate(by_vehicle.values()):
        for route in vehicle_routes:
            _trip_bars(axes, row, route, tier_colours.get(route.tier, "#666666"))
    for label, moment in (("PPK deadline", calendar.ppk_deadline), ("PPS deadline", calendar.pps_deadline)):
        axes.axvline(moment, color="#e31a1c", linestyle="--", linewidth=1.2, zorder=4)
        axes.annotate(
            label,
            (moment, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            color="#e31a1c",
            ha="right",
            va="bottom",
        )
    axes.set_yticks(range(len(by_vehicle)), [_plain(v) for v in by_vehicle], fontsize=7)
    axes.set_ylim(len(by_vehicle) - 0.5, -0.5)
    axes.set_xlim(first_day, end)
    axes.xaxis.set_major_locator(mdates.HourLocator(byhour=[0, 6, 12, 18], tz=tz))
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%d %b\n%H:%M", tz=tz))
    axes.tick_params(axis="x", labelsize=8)
    axes.grid(axis="x", color="#cccccc", linewidth=0.5, zorder=1)
    axes.set_title(_plain(title), fontsize=11, loc="left")
    figure.legend(
        handles=[
            Patch(color=tier_colours[1], label="tier 1: warehouse -> PPK (dark: loading / unloading)"),
            Patch(color=tier_colours[2], label="tier 2: PPK -> PPS"),
            Patch(color="#eeeeee", label=f"night {_NIGHT_START_HOUR}:00-{_NIGHT_END_HOUR:02d}:00"),
        ],
        loc="lower center",
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    if not by_vehicle:
        axes.text(0.5, 0.5, "no routes in this plan", transform=axes.transAxes, ha="center", va="center")
    figure.tight_layout(rect=(0, 0.35 / height, 1, 1))  # keep 0.35 inch at the bottom for the legend

    def writer(tmp: Path) -> None:
        figure.savefig(tmp, format="png", metadata={"Software": None})

    try:
        return write_with(target, writer)
    finally:
        plt.close(figure)


# ---------------------------------------------------------------- everything at once


def write_reports(
    plan: Plan,
    network: Any,
    items: Any,
    node_info: pd.DataFrame | None,
    out_dir: str | Path,
) -> list[Path]:
    """Write manifests (CSV + XLSX per vehicle), a summary workbook and a schedule chart per kabupaten,
    and the schedule chart of all vehicles; return the paths written.

    Files of an earlier run for vehicles no longer in the plan are removed from manifests/.
    """
    check_plan_references(plan, network)
    out_dir = Path(out_dir)
    infos = item_infos(items, plan)
    info = node_info_table(node_info)
    written: list[Path] = []
    manifests = out_dir / "manifests"
    grouped = vehicle_routes(plan)
    stems = _unique_stems(grouped)
    for vehicle, routes in grouped.items():
        frame = manifest_frame(routes, network, infos, info)
        written.append(write_csv(frame, manifests / f"{stems[vehicle]}.csv"))
        written.append(
            write_manifest_xlsx(frame, routes, plan, infos, network, manifests / f"{stems[vehicle]}.xlsx")
        )
    _remove_stale(manifests, written, ("*.csv", "*.xlsx"))

    vehicles = vehicles_frame(plan, network, infos)
    deliveries = deliveries_frame(plan, network, infos, info)
    unserved = unserved_frame(plan, network)
    kabupaten_dir = out_dir / "kabupaten"
    codes = sorted({r.kabupaten_code for r in plan.routes} | {u.kabupaten_code for u in plan.unserved})
    for code in codes:
        sheets = {
            "Vehicles": vehicles[vehicles["kabupaten_code"] == code],
            "Deliveries": deliveries[deliveries["kabupaten_code"] == code],
            "Unserved": unserved[unserved["kabupaten_code"] == code],
        }
        stem = safe_file_stem(code)
        written.append(
            write_summary_xlsx(
                sheets, f"Kabupaten {code}", plan, infos, kabupaten_dir / f"{stem}-summary.xlsx"
            )
        )
        kab_routes = [r for r in plan.routes if r.kabupaten_code == code]
        written.append(
            plot_schedule(
                plan, kabupaten_dir / f"{stem}-schedule.png", f"Schedule, kabupaten {code}", kab_routes
            )
        )
    _remove_stale(kabupaten_dir, written, ("*-summary.xlsx", "*-schedule.png"))
    written.append(
        plot_schedule(plan, out_dir / "schedule.png", f"Schedule of all vehicles: {plan.scenario.name}")
    )
    return written


def _remove_stale(folder: Path, keep: Sequence[Path], patterns: Sequence[str]) -> None:
    if not folder.is_dir():
        return
    kept = {p.resolve() for p in keep}
    for pattern in patterns:
        for path in folder.glob(pattern):
            if path.resolve() not in kept:
                path.unlink()
