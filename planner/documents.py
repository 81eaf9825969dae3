"""Surat jalan and berita acara serah terima (BAST): the papers a driver, boat crew, PPK and PPS sign.

Plain data from the plan to a document model, then renderers at the edge:

    trip_documents(plan, network, items, node_info)  ->  [TripDocument]   (one per trip: its stops, what changes
                                                                           hands where, the route in words, BASTs)
    render_pdf(document, lang)   -> bytes   A4 portrait, the KPU kabupaten/kota in the header, page numbers
    render_xlsx(document, lang)  -> bytes   A4 landscape, fit to width, table header rows repeated
    write_documents(...)         -> files   documents/<kabupaten code>/surat-jalan-<vehicle>-<trip>.pdf / .xlsx,
                                            documents/<code>/index.html and documents/index.html

Every word a reader sees comes from the `documents` section of planner/locales/<lang>.po; dates, times and numbers
are formatted by Babel through planner.i18n. Text from data (desa, port and vehicle names) is only ever drawn as
text: never PDF markup, never a spreadsheet formula, escaped in HTML.

What counts as a package (paket): one sealed kit per TPS (everything a TPS receives), and one package per unit of
an item addressed to the PPS or the PPK itself (catalog rule per_pps / per_ppk). An item without a catalog rule is
taken to travel in the TPS kits. Away from a PPS the number of kits is read from the per-TPS items (rule per_tps,
e.g. 2 bottles of ink per TPS); when the goods hold no such item it cannot be told and is shown as "-".
"""

from __future__ import annotations

import html
import math
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import InputError
from planner.fileio import write_bytes, write_text
from planner.i18n import DEFAULT_LANGUAGE, Language, language
from planner.nodes import is_hub, is_ppk
from planner.plan import Plan, Route, Stop
from planner.report import (
    _unique_stems,
    _write_workbook,
    check_plan_references,
    item_infos,
    node_info_table,
)

TPS_RULES = ("per_tps", "per_election_per_tps", "per_voter_reserve")
SCOPE_OF_RULE = {rule: "tps" for rule in TPS_RULES} | {"per_pps": "pps", "per_ppk": "ppk"}
SCOPES = ("tps", "pps", "ppk")
_SHOWN_KM = 0.05  # shorter segments (a PPK's access to the desa it stands in) are left out of the words


# ---------------------------------------------------------------- the document model


@dataclass(frozen=True)
class DocumentItem:
    """A catalog line as the documents need it. `scope`: tps (in the TPS kits), pps or ppk (for the committee).

    `per_tps` is the fixed number of units in each TPS kit (rule per_tps), else None.
    """

    id: str
    name: str
    scope: str
    unit_kg: float | None
    unit_m3: float | None
    per_tps: int | None = None


@dataclass(frozen=True)
class GoodsLine:
    item_id: str
    name: str
    scope: str
    quantity: int


@dataclass(frozen=True)
class Goods:
    """What changes hands at one stop (or is loaded at the base).

    `tps_numbers`: the TPS (1-based within the desa) whose sealed kits these are, at a PPS; empty elsewhere.
    `kits`: number of TPS kits (None: cannot be told). `packages`, `kg`, `m3`: None when unknown.
    """

    lines: tuple[GoodsLine, ...]
    tps_numbers: tuple[int, ...] = ()
    kits: int | None = 0
    packages: int | None = 0
    kg: float | None = 0.0
    m3: float | None = 0.0

    @property
    def empty(self) -> bool:
        """True when nothing changes hands."""
        return not any(line.quantity for line in self.lines)


@dataclass(frozen=True)
class Place:
    node_id: str
    kind: str
    code: str
    name: str


@dataclass(frozen=True)
class RouteSegment:
    """Consecutive legs of one mode (and road class) between two stops, in the direction travelled."""

    mode: str
    km: float
    start: Place
    end: Place
    road_class: str = ""
    crossings: tuple[str, ...] = ()
    rapids: bool = False
    direction: str = ""


@dataclass(frozen=True)
class Party:
    """One side of a hand-over. `role`: kpu, ppk, pps or carrier; `name` as the network or catalog writes it."""

    role: str
    name: str
    code: str = ""


@dataclass(frozen=True)
class Handover:
    """A berita acara serah terima: at `place` and `moment`, `giver` hands `goods` to `receiver`."""

    number: int
    stop_seq: int
    place: Place
    moment: datetime
    giver: Party
    receiver: Party
    goods: Goods


@dataclass(frozen=True)
class StopEntry:
    seq: int
    place: Place
    arrival: datetime
    departure: datetime
    delivered: Goods
    loaded: Goods
    route_here: tuple[RouteSegment, ...] = ()
    handover: int | None = None  # number of this stop's BAST


@dataclass(frozen=True)
class TripDocument:
    """One trip of one vehicle: the surat jalan and the BASTs of its hand-over stops."""

    kabupaten_code: str
    kabupaten_name: str
    scenario: str
    vehicle_id: str
    vehicle_type: str
    trip: int
    tier: int
    base: Place
    departure: datetime
    arrival: datetime
    stops: tuple[StopEntry, ...]
    handovers: tuple[Handover, ...]
    delivered: Goods
    km_by_mode: Mapping[str, float] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        """The document number: kabupaten code, vehicle and trip."""
        return f"{self.kabupaten_code}/{self.vehicle_id}/{self.trip}"


# ---------------------------------------------------------------- building the model


def document_items(items: Any, plan: Plan | None = None) -> list[DocumentItem]:
    """Catalog lines (planner.catalog items, dicts or a DataFrame) with their scope; plan items the catalog lacks
    are appended (scope tps, no weight)."""
    rules = _catalog_rules(items)
    result = []
    for info in item_infos(items, plan):
        rule, per = rules.get(info.id, (None, None))
        scope = SCOPE_OF_RULE.get(rule or "", "tps")
        per_tps = per if rule == "per_tps" and per else None
        kg, m3 = (info.unit_kg, info.unit_m3) if info.weight_known else (None, None)
        result.append(DocumentItem(info.id, info.name, scope, kg, m3, per_tps))
    return result


def _catalog_rules(items: Any) -> dict[str, tuple[str | None, int | None]]:
    if items is None:
        return {}
    entries = items.to_dict("records") if isinstance(items, pd.DataFrame) else list(items)
    rules = {}
    for entry in entries:
        get = entry.get if isinstance(entry, Mapping) else lambda name, e=entry: getattr(e, name, None)
        per = get("per")
        rules[str(get("id"))] = (get("rule"), int(per) if per is not None and not pd.isna(per) else None)
    return rules


def tps_numbers(stop: Stop, tps_count: int | None) -> tuple[int, ...]:
    """The TPS numbers (1-based within the desa) of the kits handed over at a PPS stop.

    The plan's `tps_kits` of the stop when it has them; otherwise every TPS of the desa, 1..tps_count.
    """
    listed = getattr(stop, "tps_kits", None)
    if listed:
        return tuple(sorted(int(n) for n in listed))
    return tuple(range(1, int(tps_count) + 1)) if tps_count else ()


def tps_ranges(numbers: Sequence[int]) -> str:
    """TPS numbers written short: (1, 2, 3, 5) -> "1-3, 5"."""
    runs: list[list[int]] = []
    for number in sorted(set(numbers)):
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]) for run in runs)


def build_goods(
    quantities: Mapping[str, int], items: Sequence[DocumentItem], numbers: Sequence[int] = ()
) -> Goods:
    """Goods of one stop: lines in catalog order, TPS kits (from `numbers` at a PPS, else the per-TPS items),
    packages, kg and m3."""
    lines = tuple(
        GoodsLine(item.id, item.name, item.scope, int(quantities[item.id]))
        for item in items
        if quantities.get(item.id)
    )
    by_id = {item.id: item for item in items}
    has_kit_goods = any(line.scope == "tps" for line in lines)
    kits: int | None = 0
    if has_kit_goods:
        per_tps = [
            math.ceil(line.quantity / by_id[line.item_id].per_tps)
            for line in lines
            if by_id[line.item_id].per_tps
        ]
        kits = len(numbers) if numbers else (max(per_tps) if per_tps else None)
    loose = sum(line.quantity for line in lines if line.scope != "tps")
    packages = None if kits is None else kits + loose
    known = all(
        by_id[line.item_id].unit_kg is not None and by_id[line.item_id].unit_m3 is not None for line in lines
    )
    kg = round(sum(q.quantity * (by_id[q.item_id].unit_kg or 0.0) for q in lines), 3) if known else None
    m3 = round(sum(q.quantity * (by_id[q.item_id].unit_m3 or 0.0) for q in lines), 4) if known else None
    return Goods(lines, tuple(numbers) if has_kit_goods else (), kits, packages, kg, m3)


def add_goods(parts: Iterable[Goods], items: Sequence[DocumentItem]) -> Goods:
    """The sum of several stops' goods (a trip total): quantities, kits and packages add up."""
    parts = list(parts)
    quantities: dict[str, int] = {}
    for part in parts:
        for line in part.lines:
            quantities[line.item_id] = quantities.get(line.item_id, 0) + line.quantity
    total = build_goods(quantities, items)
    kits = _sum_known(p.kits for p in parts)
    packages = _sum_known(p.packages for p in parts)
    return Goods(total.lines, (), kits, packages, total.kg, total.m3)


def _sum_known(values: Iterable[int | None]) -> int | None:
    values = list(values)
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def _place(network: Any, node_id: str) -> Place:
    nodes = network.nodes
    if node_id not in nodes.index:
        return Place(node_id, "", "", node_id)
    row = nodes.loc[node_id]
    return Place(node_id, _text(row.get("kind")), _text(row.get("code")), _text(row.get("name")) or node_id)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return str(value)


def _oriented_legs(route: Route, network: Any) -> list[list[tuple[str, str, str]]]:
    """The legs travelled to reach each stop after the first: (leg id, from node, to node) in the travelled
    direction. InputError when a leg does not start where the vehicle is."""
    legs = network.legs
    pending = list(route.legs)
    position = route.stops[0].node_id if route.stops else route.base
    pieces: list[list[tuple[str, str, str]]] = []
    for stop in route.stops[1:]:
        piece = []
        while position != stop.node_id and pending:
            leg_id = pending.pop(0)
            a, b = str(legs.at[leg_id, "from_node"]), str(legs.at[leg_id, "to_node"])
            if position not in (a, b):
                raise InputError(
                    f"route {route.vehicle_id} trip {route.trip}: leg {leg_id} does not start at {position}",
                    source="plan",
                )
            nxt = b if position == a else a
            piece.append((leg_id, position, nxt))
            position = nxt
        pieces.append(piece)
    if pending and pieces:
        pieces[-1].extend((leg_id, "", "") for leg_id in pending)
    return pieces


def route_segments(route: Route, network: Any) -> list[tuple[RouteSegment, ...]]:
    """For each stop after the first, the way there in segments of one mode (and road class, when the network
    has a `road_class` column); crossings named in a `crossing` column are kept with their segment."""
    legs = network.legs
    has_class, has_crossing = "road_class" in legs.columns, "crossing" in legs.columns
    result = []
    for piece in _oriented_legs(route, network):
        segments: list[RouteSegment] = []
        for leg_id, start, end in piece:
            row = legs.loc[leg_id]
            mode = str(row["mode"])
            road_class = _text(row["road_class"]) if has_class and mode == "road" else ""
            crossing = _text(row["crossing"]) if has_crossing else ""
            start = start or str(row["from_node"])
            end = end or str(row["to_node"])
            last = segments[-1] if segments else None
            if last is not None and last.mode == mode and last.road_class == road_class:
                crossings = last.crossings + (
                    (crossing,) if crossing and crossing not in last.crossings else ()
                )
                segments[-1] = RouteSegment(
                    mode,
                    round(last.km + float(row["length_km"]), 3),
                    last.start,
                    _place(network, end),
                    road_class,
                    crossings,
                    last.rapids or bool(row["rapids"]),
                    last.direction or _text(row["direction"]),
                )
            else:
                segments.append(
                    RouteSegment(
                        mode,
                        float(row["length_km"]),
                        _place(network, start),
                        _place(network, end),
                        road_class,
                        (crossing,) if crossing else (),
                        bool(row["rapids"]),
                        _text(row["direction"]),
                    )
                )
        result.append(tuple(segments))
    return result


def _carriers_at(plan: Plan) -> dict[str, list[str]]:
    """Vehicles that take goods on at each port base: who receives what is dropped there."""
    carriers: dict[str, list[str]] = {}
    for route in plan.routes:
        if route.stops and any(route.stops[0].load.values()) and is_hub(route.base):
            names = carriers.setdefault(route.base, [])
            if route.vehicle_id not in names:
                names.append(route.vehicle_id)
    return carriers


def handover_parties(
    route: Route, place: Place, network: Any, kabupaten_name: str, carriers: Mapping[str, Sequence[str]]
) -> tuple[Party, Party]:
    """Who hands over to whom at a delivery stop.

    Tier 1 hands over on behalf of the KPU kabupaten/kota, tier 2 on behalf of the PPK (of the trip's base, or
    of the desa's kecamatan when the trip starts at a port). The receiver is the PPK or PPS of the stop, or at a
    port the crew of the vessels based there that take the goods on.
    """
    if route.tier == 1:
        giver = Party("kpu", kabupaten_name, route.kabupaten_code)
    else:
        ppk_id = route.base if is_ppk(route.base) else _ppk_of(network, place.node_id)
        giver = Party("ppk", _place(network, ppk_id).name if ppk_id else route.vehicle_id)
    if place.kind in ("ppk", "pps"):
        receiver = Party(place.kind, place.name)
    else:
        receiver = Party("carrier", ", ".join(carriers.get(place.node_id, [])) or place.name)
    return giver, receiver


def _ppk_of(network: Any, node_id: str) -> str | None:
    nodes = network.nodes
    if node_id not in nodes.index:
        return None
    candidate = f"ppk:{_text(nodes.at[node_id, 'kecamatan_code'])}"
    return candidate if candidate in nodes.index else None


def trip_document(
    route: Route,
    plan: Plan,
    network: Any,
    items: Sequence[DocumentItem],
    tps_count: Mapping[str, int],
    kabupaten_name: str,
    carriers: Mapping[str, Sequence[str]] | None = None,
) -> TripDocument:
    """The surat jalan and BASTs of one trip. `tps_count`: TPS per PPS node (for the kits' TPS numbers)."""
    carriers = _carriers_at(plan) if carriers is None else carriers
    ways = [(), *route_segments(route, network)]
    stops, handovers = [], []
    for seq, (stop, way) in enumerate(zip(route.stops, ways, strict=False), start=1):
        place = _place(network, stop.node_id)
        numbers = tps_numbers(stop, tps_count.get(stop.node_id)) if place.kind == "pps" else ()
        delivered = build_goods(stop.deliver, items, numbers)
        loaded = build_goods(stop.load, items)
        number = None
        if not delivered.empty:
            giver, receiver = handover_parties(route, place, network, kabupaten_name, carriers)
            number = len(handovers) + 1
            handovers.append(Handover(number, seq, place, stop.arrival, giver, receiver, delivered))
        stops.append(StopEntry(seq, place, stop.arrival, stop.departure, delivered, loaded, way, number))
    km: dict[str, float] = {}
    for segment in (s for way in ways for s in way):
        km[segment.mode] = round(km.get(segment.mode, 0.0) + segment.km, 3)
    first, last = route.stops[0], route.stops[-1]
    return TripDocument(
        route.kabupaten_code,
        kabupaten_name,
        plan.scenario.name,
        route.vehicle_id,
        route.vehicle_type,
        route.trip,
        route.tier,
        _place(network, route.base),
        first.departure,
        last.arrival,
        tuple(stops),
        tuple(handovers),
        add_goods((s.delivered for s in stops), items),
        km,
    )


def kabupaten_names(boundaries: Any = None, network: Any = None) -> dict[str, str]:
    """Kabupaten/kota names by code: from the boundary layer ("Kabupaten Paser", "Kota Samarinda") if given."""
    names: dict[str, str] = {}
    frame = getattr(boundaries, "kabupaten", None)
    if frame is not None:
        names.update({str(c): str(n) for c, n in zip(frame["code"], frame["name"], strict=True)})
    return names


def check_kabupaten(plan: Plan, kabupaten: str | None) -> None:
    """InputError naming the plan's kabupaten when `kabupaten` (if given) has no trip in the plan."""
    present = sorted({r.kabupaten_code for r in plan.routes if r.stops})
    if kabupaten is not None and kabupaten not in present:
        raise InputError(
            f"kabupaten {kabupaten!r} has no trip in this plan (kabupaten in the plan: {', '.join(present) or 'none'})"
        )


def trip_documents(
    plan: Plan,
    network: Any,
    items: Any,
    node_info: pd.DataFrame | None,
    names: Mapping[str, str] | None = None,
    kabupaten: str | None = None,
) -> list[TripDocument]:
    """The documents of every trip of the plan (or of one kabupaten), by kabupaten, vehicle and trip.

    `names`: kabupaten/kota name per code (default "Kabupaten/Kota <code>" in the document's language is up
    to the renderer: an empty name). InputError when `kabupaten` has no trip in the plan.
    """
    check_kabupaten(plan, kabupaten)
    routes = [r for r in plan.routes if r.stops and (kabupaten is None or r.kabupaten_code == kabupaten)]
    infos = document_items(items, plan)
    info = node_info_table(node_info)
    counts = {str(k): int(v) for k, v in info["tps"].dropna().items()}
    carriers = _carriers_at(plan)
    names = names or {}
    routes.sort(key=lambda r: (r.kabupaten_code, r.vehicle_id, r.trip, r.stops[0].departure))
    return [
        trip_document(r, plan, network, infos, counts, names.get(r.kabupaten_code, ""), carriers)
        for r in routes
    ]


# ---------------------------------------------------------------- words (shared by the renderers)


def kabupaten_title(document: TripDocument, lang: Language) -> str:
    """The letterhead: "KOMISI PEMILIHAN UMUM KABUPATEN PASER"."""
    name = document.kabupaten_name or lang("documents.kabupaten_unknown", code=document.kabupaten_code)
    return lang("documents.kpu_header", kabupaten=name).upper()


def vehicle_words(vehicle_type: str, lang: Language) -> str:
    """The vehicle type in words ("truk"); a type the catalog does not know is shown as it is written."""
    key = f"documents.vehicle.{vehicle_type}"
    return lang(key) if key in lang.messages else vehicle_type


def party_words(party: Party, lang: Language) -> str:
    """ "KPU Kabupaten Paser", "PPS Long Apari", ...; a kabupaten without a name goes by its code."""
    name = party.name or lang("documents.kabupaten_unknown", code=party.code)
    return lang(f"documents.role.{party.role}", name=name)


def place_words(place: Place) -> str:
    """A place with its code: "PPK Alpha (64.99.01)"."""
    return f"{place.name} ({place.code})" if place.code and place.code not in place.name else place.name


def kits_words(goods: Goods, lang: Language) -> str:
    """ "Paket TPS 1-4 (4 paket)" at a PPS, "6 paket TPS" elsewhere, "" when the goods hold no TPS kit."""
    if not any(line.scope == "tps" for line in goods.lines):
        return ""
    if goods.tps_numbers:
        return lang("documents.kits", numbers=tps_ranges(goods.tps_numbers), count=len(goods.tps_numbers))
    if goods.kits is None:
        return lang("documents.kits_unknown")
    return lang("documents.kits_count", count=goods.kits)


def amount_words(value: float | int | None, lang: Language, digits: int = 0) -> str:
    """A number the language's way, "-" when it is not known."""
    return "-" if value is None else lang.number(value, digits)


def goods_lines(goods: Goods, lang: Language) -> list[str]:
    """The goods in short lines for the surat jalan: the TPS kits as one line ("Paket TPS 1-4 (4 paket)"), then
    the PPS and PPK items ("Kemasan pengaman PPS: 1"). The BAST lists every item; here the kits' contents are
    listed only when the number of kits cannot be told."""
    kits = kits_words(goods, lang)
    shown = [line for line in goods.lines if line.scope != "tps" or goods.kits is None]
    items = [
        lang("documents.item_line", name=line.name, quantity=lang.number(line.quantity)) for line in shown
    ]
    return ([kits] if kits else []) + items


def segment_words(segment: RouteSegment, lang: Language) -> str:
    """One segment in words: "sungai 16,0 km, milir (ke hilir), melewati riam dari Jetty A ke Jetty B"."""
    km = lang.number(segment.km, 1)
    key = f"documents.mode.{segment.mode}"
    way = lang(key, km=km) if key in lang.messages else lang("documents.mode.other", mode=segment.mode, km=km)
    extras = []
    if segment.road_class:
        extras.append(lang("documents.road_class", road_class=segment.road_class))
    if segment.mode == "river" and segment.direction in ("up", "down"):
        extras.append(lang(f"documents.direction.{segment.direction}"))
    if segment.rapids:
        extras.append(lang("documents.rapids"))
    if segment.crossings:
        extras.append(lang("documents.crossing", names=", ".join(segment.crossings)))
    way = ", ".join([way, *extras])
    return lang("documents.segment", way=way, start=segment.start.name, end=segment.end.name)


def route_lines(document: TripDocument, lang: Language) -> list[tuple[str, str]]:
    """(from stop -> to stop, the way in words) for every stop after the first."""
    lines = []
    for previous, stop in zip(document.stops, document.stops[1:], strict=False):
        shown = [s for s in stop.route_here if s.km >= _SHOWN_KM]
        way = "; ".join(segment_words(s, lang) for s in shown) or lang("documents.route.none")
        lines.append(
            (
                lang(
                    "documents.route.stop",
                    start=f"{previous.seq}. {previous.place.name}",
                    end=f"{stop.seq}. {stop.place.name}",
                ),
                way,
            )
        )
    return lines


def distance_words(document: TripDocument, lang: Language) -> str:
    """ "Jarak tempuh: jalan darat 57,0 km, sungai 32,0 km" """
    parts = []
    for mode, km in document.km_by_mode.items():
        if km < _SHOWN_KM:
            continue
        key = f"documents.mode.{mode}"
        text = lang.number(km, 1)
        parts.append(
            lang(key, km=text) if key in lang.messages else lang("documents.mode.other", mode=mode, km=text)
        )
    return lang("documents.route.distance", parts=", ".join(parts) or lang("documents.route.none"))


def stop_activity(document: TripDocument, stop: StopEntry, lang: Language) -> list[str]:
    """What happens at a stop, as lines for the surat jalan's table."""
    lines: list[str] = []
    if not stop.loaded.empty:
        lines += [lang("documents.activity.load"), *goods_lines(stop.loaded, lang)]
    if not stop.delivered.empty:
        head = lang("documents.activity.deliver")
        if stop.handover is not None:
            head += " " + lang("documents.activity.bast", number=stop.handover)
        lines += [head, *goods_lines(stop.delivered, lang)]
    if not lines:
        first = stop.seq == 1
        lines.append(lang("documents.activity.start" if first else "documents.activity.return"))
    return lines


def total_words(goods: Goods, lang: Language) -> str:
    """ "Jumlah diserahkan: 7 paket, 30,3 kg, 0,12 m³" """
    return lang(
        "documents.total_line",
        packages=amount_words(goods.packages, lang),
        kg=amount_words(goods.kg, lang, 1),
        m3=amount_words(goods.m3, lang, 2),
    )


# ---------------------------------------------------------------- PDF (fpdf2)

PAGE_TOTAL_ALIAS = "\ue000\ue001"  # fpdf2 puts the page count here; data text never holds it (see inert_text)
_PDF_MARGIN_MM = 15
_PDF_WIDTH_MM = 210 - 2 * _PDF_MARGIN_MM
_PDF_BOTTOM_MM = 16
_LINE_MM = 4.0
_INERT = re.compile("[\x00-\x08\x0b-\x1f\x7f\ue000-\uf8ff]")


def inert_text(text: str) -> str:
    """Text drawn as it is: control and private-use characters (fpdf2's page-count alias) are removed."""
    return _INERT.sub("", str(text))


@dataclass(frozen=True)
class PdfFonts:
    """The regular and bold TrueType files the PDFs embed (DejaVu Sans, shipped with matplotlib)."""

    regular: Path
    bold: Path


def dejavu_fonts() -> PdfFonts:
    """DejaVu Sans as matplotlib ships it (Bitstream Vera licence, free to embed)."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return PdfFonts(folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf")


def subset_fonts(characters: Iterable[str], folder: Path) -> PdfFonts:
    """DejaVu Sans cut down to `characters` (plus Latin) in `folder`: loading it is ten times faster than the
    whole font, which matters for a thousand trips. Glyphs are the font's own; nothing is drawn differently."""
    from fontTools import subset

    codes = set(range(0x20, 0x250)) | {ord(c) for c in characters if ord(c) >= 0x20}
    full = dejavu_fonts()
    paths = []
    for source in (full.regular, full.bold):
        options = subset.Options()
        options.layout_features = []
        options.name_IDs = ["*"]
        options.notdef_outline = True
        options.drop_tables += ["FFTM"]
        font = subset.load_font(str(source), options)
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=sorted(codes))
        subsetter.subset(font)
        target = folder / source.name
        subset.save_font(font, str(target), options)
        paths.append(target)
    return PdfFonts(paths[0], paths[1])


def document_characters(documents: Iterable[TripDocument], lang: Language) -> set[str]:
    """Every character the documents can draw: the language's messages and the text of the documents' data."""
    characters = set("".join(lang.messages.values())) | set("0123456789.,:-/() ☐³·")
    for document in documents:
        characters |= set(kabupaten_title(document, lang) + document.vehicle_id + document.vehicle_type)
        for stop in document.stops:
            characters |= set(stop.place.name + stop.place.code)
            for segment in stop.route_here:
                characters |= set(
                    segment.start.name + segment.end.name + segment.road_class + "".join(segment.crossings)
                )
            for line in (*stop.delivered.lines, *stop.loaded.lines):
                characters |= set(line.name)
        for handover in document.handovers:
            characters |= set(handover.giver.name + handover.receiver.name)
    return characters


def _new_pdf(document: TripDocument, lang: Language, fonts: PdfFonts) -> Any:
    from fpdf import FPDF

    title = kabupaten_title(document, lang)
    reference = document.reference

    class DocumentPdf(FPDF):
        def header(self) -> None:
            self.set_font("DejaVu", "B", 10)
            self.cell(0, 5, inert_text(title), align="C", new_x="LMARGIN", new_y="NEXT")
            self.set_font("DejaVu", "", 7.5)
            self.cell(0, 4, inert_text(lang("documents.number", reference=reference)), align="C")
            self.ln(5)
            self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
            self.ln(3)

        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("DejaVu", "", 7.5)
            page = lang("common.page", page=self.page_no(), pages=PAGE_TOTAL_ALIAS)
            self.cell(0, 5, page, align="C")

    pdf = DocumentPdf(orientation="portrait", unit="mm", format="A4")
    pdf.set_margins(_PDF_MARGIN_MM, _PDF_MARGIN_MM, _PDF_MARGIN_MM)
    pdf.c_margin = 0.5
    pdf.set_auto_page_break(True, margin=_PDF_BOTTOM_MM)
    pdf.add_font("DejaVu", "", str(fonts.regular))
    pdf.add_font("DejaVu", "B", str(fonts.bold))
    pdf.alias_nb_pages(PAGE_TOTAL_ALIAS)
    pdf.set_creation_date(document.departure)
    pdf.set_creator("planner")
    pdf.set_producer("planner (fpdf2)")
    pdf.set_title(inert_text(f"{lang('documents.surat_jalan.title')} {reference}"))
    pdf.set_author(inert_text(title))
    pdf.set_lang(lang.code)
    return pdf


def _draw_text(pdf: Any, x: float, width: float, text: str, line_mm: float, align: str = "L") -> None:
    """Draw `text` from the current height at `x`: a line that fits is one cell, only a longer one is wrapped
    (fpdf2's line breaking is the slow part of a page)."""
    for line in inert_text(text).split("\n"):
        pdf.set_x(x)
        if pdf.get_string_width(line) <= width - 2 * pdf.c_margin:
            pdf.cell(width, line_mm, line, align=align, new_x="LEFT", new_y="NEXT")
        else:
            pdf.multi_cell(width, line_mm, line, align=align, new_x="LEFT", new_y="NEXT")


def _text_block(
    pdf: Any, text: str, size: float = 9, bold: bool = False, align: str = "L", gap: float = 1
) -> None:
    pdf.set_font("DejaVu", "B" if bold else "", size)
    _draw_text(pdf, pdf.l_margin, pdf.epw, text, size * 0.5, align)
    pdf.set_x(pdf.l_margin)
    pdf.ln(gap)


def _line_count(pdf: Any, width: float, text: str) -> int:
    """Lines `text` takes in a cell `width` wide: a line that fits is measured, only longer ones are wrapped."""
    count = 0
    for line in inert_text(text).split("\n"):
        if pdf.get_string_width(line) <= width - 2 * pdf.c_margin:
            count += 1
        else:
            count += len(pdf.multi_cell(width, _LINE_MM, line, dry_run=True, output="LINES"))
    return max(count, 1)


def _row_height(pdf: Any, widths: Sequence[float], cells: Sequence[str]) -> float:
    return max(_line_count(pdf, w - 1, text) for w, text in zip(widths, cells, strict=True)) * _LINE_MM + 1.4


def _table_row(
    pdf: Any, widths: Sequence[float], cells: Sequence[str], aligns: str, bold: bool = False
) -> None:
    pdf.set_font("DejaVu", "B" if bold else "", 8)
    height = _row_height(pdf, widths, cells)
    x, y = pdf.l_margin, pdf.get_y()
    if bold:
        pdf.set_fill_color(225, 225, 225)
        pdf.rect(x, y, sum(widths), height, style="F")
    for width, text, align in zip(widths, cells, aligns, strict=True):
        pdf.rect(x, y, width, height)
        pdf.set_y(y + 0.8)
        _draw_text(pdf, x + 0.5, width - 1, text, _LINE_MM, align)
        x += width
    pdf.set_xy(pdf.l_margin, y + height)


def _table(
    pdf: Any, widths: Sequence[float], header: Sequence[str], rows: Sequence[Sequence[str]], aligns: str
) -> None:
    """A bordered table whose header row is repeated on every page it runs onto."""
    _table_row(pdf, widths, header, "C" * len(header), bold=True)
    for cells in rows:
        pdf.set_font("DejaVu", "", 8)
        if pdf.get_y() + _row_height(pdf, widths, cells) > pdf.page_break_trigger:
            pdf.add_page()
            _table_row(pdf, widths, header, "C" * len(header), bold=True)
        _table_row(pdf, widths, cells, aligns)
    pdf.ln(2)


def _fields(pdf: Any, pairs: Sequence[tuple[str, str]]) -> None:
    """Label: value lines; an empty value is a dotted line to fill in by hand."""
    for label, value in pairs:
        pdf.set_font("DejaVu", "", 9)
        pdf.cell(55, 5, inert_text(label))
        pdf.cell(3, 5, ":")
        _draw_text(pdf, pdf.get_x(), pdf.epw - 58, value or "." * 70, 5)
        pdf.set_x(pdf.l_margin)


def _signatures(pdf: Any, titles: Sequence[str], lang: Language) -> None:
    """Signature boxes side by side: title, room to sign, name and position lines."""
    height = 30
    if pdf.get_y() + height + 3 > pdf.page_break_trigger:
        pdf.add_page()
    pdf.set_auto_page_break(False)
    width = _PDF_WIDTH_MM / len(titles)
    y = pdf.get_y() + 2
    for i, title in enumerate(titles):
        x = pdf.l_margin + i * width
        pdf.rect(x, y, width, height)
        pdf.set_y(y + 1)
        pdf.set_font("DejaVu", "B", 8)
        _draw_text(pdf, x + 1, width - 2, title, 4, "C")
        pdf.set_font("DejaVu", "", 8)
        for n, label in enumerate((lang("documents.sign.name"), lang("documents.sign.position"))):
            pdf.set_xy(x + 2, y + height - 10 + 5 * n)
            pdf.cell(width - 4, 4, inert_text(f"{label}: " + "." * 28))
    pdf.set_auto_page_break(True, margin=_PDF_BOTTOM_MM)
    pdf.set_xy(pdf.l_margin, y + height + 3)


def _surat_jalan_pages(pdf: Any, document: TripDocument, lang: Language) -> None:
    pdf.add_page()
    _text_block(pdf, lang("documents.surat_jalan.title"), 14, bold=True, align="C", gap=0)
    _text_block(pdf, lang("documents.surat_jalan.subtitle"), 9, align="C", gap=3)
    base = place_words(document.base)
    _fields(
        pdf,
        [
            (lang("documents.field.vehicle"), vehicle_words(document.vehicle_type, lang)),
            (lang("documents.field.vehicle_id"), document.vehicle_id),
            (
                lang("documents.field.trip"),
                f"{document.trip} · {lang('documents.field.tier')} {document.tier}: {lang(f'documents.tier.{document.tier}')}",
            ),
            (lang("documents.field.base"), base),
            (lang("documents.field.departure"), lang.datetime(document.departure)),
            (lang("documents.field.return"), lang.datetime(document.arrival)),
            (lang("documents.field.plate"), ""),
            (lang("documents.field.driver"), ""),
            (lang("documents.field.escort"), ""),
            (lang("documents.field.phone"), ""),
        ],
    )
    pdf.ln(2)
    _text_block(pdf, lang("documents.stops.title"), 10, bold=True)
    widths = (9, 39, 40, 50, 14, 14, 14)
    header = [lang(f"documents.col.{c}") for c in ("no", "place", "time", "goods", "packages", "kg", "m3")]
    rows = []
    for stop in document.stops:
        goods = stop.delivered if not stop.delivered.empty else stop.loaded
        moving = not (stop.delivered.empty and stop.loaded.empty)
        rows.append(
            [
                str(stop.seq),
                place_words(stop.place),
                "\n".join(_stop_times(stop, lang)),
                "\n".join(stop_activity(document, stop, lang)),
                amount_words(goods.packages, lang) if moving else "",
                amount_words(goods.kg, lang, 1) if moving else "",
                amount_words(goods.m3, lang, 2) if moving else "",
            ]
        )
    total = document.delivered
    rows.append(
        [
            "",
            lang("documents.total"),
            "",
            "",
            amount_words(total.packages, lang),
            amount_words(total.kg, lang, 1),
            amount_words(total.m3, lang, 2),
        ]
    )
    _table(pdf, widths, header, rows, "CLLLRRR")
    _text_block(pdf, lang("documents.route.title"), 10, bold=True)
    _text_block(pdf, distance_words(document, lang), 8.5)
    for stops, way in route_lines(document, lang):
        _text_block(pdf, f"{stops}: {way}", 8.5, gap=0.5)
    pdf.ln(2)
    _signatures(
        pdf,
        [lang("documents.sign.dispatcher"), lang("documents.sign.driver"), lang("documents.sign.escort")],
        lang,
    )


def _stop_times(stop: StopEntry, lang: Language) -> list[str]:
    lines = [lang.date(stop.arrival), lang("documents.time.arrival", time=lang.time(stop.arrival))]
    if stop.departure != stop.arrival:
        lines.append(lang("documents.time.departure", time=lang.time(stop.departure)))
    return lines


def _bast_pages(pdf: Any, document: TripDocument, handover: Handover, lang: Language) -> None:
    pdf.add_page()
    _text_block(pdf, lang("documents.bast.title"), 13, bold=True, align="C", gap=0)
    _text_block(
        pdf,
        lang("documents.bast.number", reference=document.reference, number=handover.number),
        8.5,
        align="C",
        gap=3,
    )
    place = place_words(handover.place)
    opening = lang(
        "documents.bast.opening",
        date=lang.date(handover.moment),
        time=lang.time(handover.moment),
        place=place,
    )
    _text_block(pdf, opening, 9, gap=2)
    for title, party in (
        (lang("documents.bast.first"), handover.giver),
        (lang("documents.bast.second"), handover.receiver),
    ):
        _text_block(pdf, f"{title}: {party_words(party, lang)}", 9, bold=True, gap=0.5)
        _fields(pdf, [(lang("documents.sign.name"), ""), (lang("documents.sign.position"), "")])
        pdf.ln(1)
    carried = lang(
        "documents.bast.carried_by",
        vehicle_type=vehicle_words(document.vehicle_type, lang),
        vehicle=document.vehicle_id,
        trip=document.trip,
    )
    _text_block(pdf, carried, 8.5, gap=2)
    _text_block(pdf, lang("documents.bast.statement"), 9, gap=2)
    for title, lines in bast_sections(handover.goods, lang):
        _text_block(pdf, title, 9.5, bold=True)
        rows = [[str(i), what, lang.number(q), "☐"] for i, (what, q) in enumerate(lines, start=1)]
        _table(pdf, (10, 110, 30, 30), _bast_header(lang), rows, "CLRC")
    _text_block(pdf, total_words(handover.goods, lang), 9, bold=True, gap=2)
    _text_block(pdf, lang("documents.bast.condition") + " " + "." * 60, 9, gap=2)
    _text_block(pdf, lang("documents.bast.closing"), 9, gap=1)
    _text_block(
        pdf,
        lang("documents.bast.place_date", place=handover.place.name, date=lang.date(handover.moment)),
        9,
        align="R",
        gap=1,
    )
    _signatures(
        pdf,
        [lang("documents.bast.first"), lang("documents.bast.second"), lang("documents.bast.witness")],
        lang,
    )


def bast_sections(goods: Goods, lang: Language) -> list[tuple[str, list[tuple[str, int]]]]:
    """The BAST's lists as (title, [(what, quantity)]): one line per sealed TPS kit, then every item."""
    sections = []
    if goods.tps_numbers:
        kits = [(lang("documents.kit_line", number=n), 1) for n in goods.tps_numbers]
        sections.append((lang("documents.bast.kits_title"), kits))
    lines = [
        (f"{line.name} ({lang(f'documents.scope.{line.scope}')})", line.quantity) for line in goods.lines
    ]
    sections.append((lang("documents.bast.items_title"), lines))
    return sections


def _bast_header(lang: Language) -> list[str]:
    return [lang(f"documents.col.{c}") for c in ("no", "item", "quantity", "received")]


def render_pdf(document: TripDocument, lang: Language | None = None, fonts: PdfFonts | None = None) -> bytes:
    """The trip's surat jalan followed by one BAST per hand-over stop, as A4 PDF bytes.

    The same document gives the same bytes: the creation date is the trip's departure, the file id a hash of
    the content. `fonts`: DejaVu Sans (default) or a subset of it from `subset_fonts`.
    """
    lang = lang or language(DEFAULT_LANGUAGE)
    pdf = _new_pdf(document, lang, fonts or dejavu_fonts())
    _surat_jalan_pages(pdf, document, lang)
    for handover in document.handovers:
        _bast_pages(pdf, document, handover, lang)
    return bytes(pdf.output())


# ---------------------------------------------------------------- XLSX (openpyxl)


def _put(sheet: Any, row: int, column: int, value: Any, bold: bool = False, wrap: bool = False) -> Any:
    """Write one cell. Text is always a text cell: a name like `=HYPERLINK(...)` shows as it is, never runs."""
    from openpyxl.styles import Alignment, Font

    cell = sheet.cell(row=row, column=column, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
    if bold:
        cell.font = Font(bold=True)
    if wrap:
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    return cell


def _header_text(text: str) -> str:
    """Text for a print header or footer, where `&` starts a code (&P page, &N pages)."""
    return inert_text(text).replace("&", "&&")


def _print_setup(sheet: Any, title_row: int, title: str, lang: Language) -> None:
    """A4 landscape, fit to one page wide, the table's header row repeated, page numbers in the footer."""
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.orientation = sheet.ORIENTATION_LANDSCAPE
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = f"{title_row}:{title_row}"
    sheet.print_options.gridLines = False
    sheet.page_margins.left = sheet.page_margins.right = 0.5
    sheet.oddHeader.center.text = _header_text(title)
    sheet.oddFooter.center.text = lang("common.page", page="&P", pages="&N")


def _table_header(sheet: Any, row: int, titles: Sequence[str]) -> None:
    from openpyxl.styles import PatternFill

    for column, title in enumerate(titles, start=1):
        _put(sheet, row, column, title, bold=True, wrap=True).fill = PatternFill("solid", fgColor="DDDDDD")


def _surat_jalan_sheet(sheet: Any, document: TripDocument, lang: Language) -> None:
    _put(sheet, 1, 1, kabupaten_title(document, lang), bold=True)
    _put(sheet, 2, 1, lang("documents.surat_jalan.title"), bold=True)
    _put(sheet, 3, 1, lang("documents.number", reference=document.reference))
    fields = [
        ("documents.field.vehicle", vehicle_words(document.vehicle_type, lang)),
        ("documents.field.vehicle_id", document.vehicle_id),
        ("documents.field.trip", str(document.trip)),
        ("documents.field.tier", f"{document.tier}: {lang(f'documents.tier.{document.tier}')}"),
        ("documents.field.base", place_words(document.base)),
        ("documents.field.departure", lang.datetime(document.departure)),
        ("documents.field.return", lang.datetime(document.arrival)),
        ("documents.field.plate", ""),
        ("documents.field.driver", ""),
        ("documents.field.escort", ""),
        ("documents.field.phone", ""),
    ]
    for row, (key, value) in enumerate(fields, start=5):
        _put(sheet, row, 1, lang(key), bold=True)
        _put(sheet, row, 2, value or "." * 40)
    header_row = 5 + len(fields) + 1
    columns = ("no", "place", "code", "arrival", "departure", "goods", "packages", "kg", "m3")
    _table_header(sheet, header_row, [lang(f"documents.col.{c}") for c in columns])
    row = header_row
    for stop in document.stops:
        row += 1
        goods = stop.delivered if not stop.delivered.empty else stop.loaded
        moving = not (stop.delivered.empty and stop.loaded.empty)
        values = [
            stop.seq,
            stop.place.name,
            stop.place.code,
            lang.datetime(stop.arrival),
            lang.datetime(stop.departure),
            "\n".join(stop_activity(document, stop, lang)),
        ]
        for column, value in enumerate(values, start=1):
            _put(sheet, row, column, value, wrap=True)
        if moving:
            for column, value in enumerate((goods.packages, goods.kg, goods.m3), start=7):
                _put(sheet, row, column, value)
    row += 1
    _put(sheet, row, 2, lang("documents.total"), bold=True)
    for column, value in enumerate(
        (document.delivered.packages, document.delivered.kg, document.delivered.m3), start=7
    ):
        _put(sheet, row, column, value, bold=True)
    row = _route_rows(sheet, row + 2, document, lang)
    for column, key in (
        (2, "documents.sign.dispatcher"),
        (4, "documents.sign.driver"),
        (6, "documents.sign.escort"),
    ):
        _put(sheet, row + 1, column, lang(key), bold=True)
        _put(sheet, row + 5, column, f"{lang('documents.sign.name')}: " + "." * 24)
    for letter, width in zip("ABCDEFGHI", (6, 34, 16, 30, 30, 44, 9, 9, 9), strict=True):
        sheet.column_dimensions[letter].width = width
    _print_setup(sheet, header_row, kabupaten_title(document, lang), lang)


def _route_rows(sheet: Any, row: int, document: TripDocument, lang: Language) -> int:
    _put(sheet, row, 1, lang("documents.route.title"), bold=True)
    _put(sheet, row + 1, 2, distance_words(document, lang))
    row += 1
    for stops, way in route_lines(document, lang):
        row += 1
        _put(sheet, row, 2, stops, wrap=True)
        sheet.merge_cells(start_row=row, start_column=4, end_row=row, end_column=9)
        _put(sheet, row, 4, way, wrap=True)
    return row + 1


def _bast_sheet(sheet: Any, document: TripDocument, handover: Handover, lang: Language) -> None:
    _put(sheet, 1, 1, kabupaten_title(document, lang), bold=True)
    _put(sheet, 2, 1, lang("documents.bast.title"), bold=True)
    _put(sheet, 3, 1, lang("documents.bast.number", reference=document.reference, number=handover.number))
    opening = lang(
        "documents.bast.opening",
        date=lang.date(handover.moment),
        time=lang.time(handover.moment),
        place=place_words(handover.place),
    )
    _put(sheet, 5, 1, opening)
    _put(sheet, 6, 1, lang("documents.bast.first"), bold=True)
    _put(sheet, 6, 3, party_words(handover.giver, lang))
    _put(sheet, 7, 1, lang("documents.bast.second"), bold=True)
    _put(sheet, 7, 3, party_words(handover.receiver, lang))
    carried = lang(
        "documents.bast.carried_by",
        vehicle_type=vehicle_words(document.vehicle_type, lang),
        vehicle=document.vehicle_id,
        trip=document.trip,
    )
    _put(sheet, 8, 1, carried)
    _put(sheet, 9, 1, lang("documents.bast.statement"))
    header_row = 11
    _table_header(sheet, header_row, _bast_header(lang))
    row = header_row
    for title, lines in bast_sections(handover.goods, lang):
        row += 1
        _put(sheet, row, 2, title, bold=True)
        for number, (what, quantity) in enumerate(lines, start=1):
            row += 1
            _put(sheet, row, 1, number)
            _put(sheet, row, 2, what)
            _put(sheet, row, 3, quantity)
    row += 2
    _put(sheet, row, 1, total_words(handover.goods, lang), bold=True)
    _put(sheet, row + 1, 1, lang("documents.bast.condition") + " " + "." * 40)
    _put(sheet, row + 2, 1, lang("documents.bast.closing"))
    _put(
        sheet,
        row + 3,
        2,
        lang("documents.bast.place_date", place=handover.place.name, date=lang.date(handover.moment)),
    )
    for column, key in (
        (1, "documents.bast.first"),
        (2, "documents.bast.second"),
        (3, "documents.bast.witness"),
    ):
        _put(sheet, row + 5, column, lang(key), bold=True)
        _put(sheet, row + 9, column, f"{lang('documents.sign.name')}: " + "." * 24)
    for letter, width in zip("ABCD", (30, 60, 30, 30), strict=True):
        sheet.column_dimensions[letter].width = width
    _print_setup(sheet, header_row, kabupaten_title(document, lang), lang)


def build_workbook(document: TripDocument, lang: Language | None = None) -> Any:
    """The trip as an openpyxl workbook: a sheet for the surat jalan, one per BAST, each ready to print."""
    from openpyxl import Workbook

    lang = lang or language(DEFAULT_LANGUAGE)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = lang("documents.sheet.surat_jalan")[:31]
    _surat_jalan_sheet(sheet, document, lang)
    for handover in document.handovers:
        _bast_sheet(
            workbook.create_sheet(lang("documents.sheet.bast", number=handover.number)[:31]),
            document,
            handover,
            lang,
        )
    return workbook


# ---------------------------------------------------------------- files and the index page

DOCUMENTS_DIR = "documents"
_INDEX_STYLE = (
    "body{font-family:sans-serif;margin:1.5em;max-width:70em}table{border-collapse:collapse;width:100%}"
    "th,td{border:1px solid #999;padding:.3em .5em;text-align:left;vertical-align:top}th{background:#ddd}"
    "td.n{text-align:right}"
)


def document_stems(documents: Sequence[TripDocument]) -> dict[tuple[str, int], str]:
    """File name stem per (vehicle, trip): `surat-jalan-truck_wh_64.11_1-1`, unique within the list."""
    stems = _unique_stems(f"{d.vehicle_id}-{d.trip}" for d in documents)
    return {(d.vehicle_id, d.trip): "surat-jalan-" + stems[f"{d.vehicle_id}-{d.trip}"] for d in documents}


def _html_page(title: str, lang: Language, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{lang.code}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_INDEX_STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )


def _cells(values: Iterable[str], numeric: Iterable[int] = ()) -> str:
    numeric = set(numeric)
    return "".join(
        f'<td class="n">{html.escape(v)}</td>' if i in numeric else f"<td>{html.escape(v)}</td>"
        for i, v in enumerate(values)
    )


def kabupaten_index(
    documents: Sequence[TripDocument], stems: Mapping[tuple[str, int], str], lang: Language
) -> str:
    """The HTML list of one kabupaten's trips with links to their PDF and XLSX (every text escaped)."""
    title = f"{lang('documents.index.title')}: {kabupaten_title(documents[0], lang)}"
    header = [
        lang("documents.col.no"),
        lang("documents.field.vehicle"),
        lang("documents.field.vehicle_id"),
        lang("documents.field.trip"),
        lang("documents.field.base"),
        lang("documents.field.departure"),
        lang("documents.index.handovers"),
        lang("documents.col.packages"),
        lang("documents.col.kg"),
        lang("documents.index.files"),
    ]
    rows = []
    for n, document in enumerate(documents, start=1):
        stem = html.escape(stems[(document.vehicle_id, document.trip)], quote=True)
        values = [
            str(n),
            vehicle_words(document.vehicle_type, lang),
            document.vehicle_id,
            str(document.trip),
            place_words(document.base),
            lang.datetime(document.departure),
            str(len(document.handovers)),
            amount_words(document.delivered.packages, lang),
            amount_words(document.delivered.kg, lang, 1),
        ]
        links = f'<td><a href="{stem}.pdf">PDF</a> · <a href="{stem}.xlsx">XLSX</a></td>'
        rows.append(f"<tr>{_cells(values, (0, 3, 6, 7, 8))}{links}</tr>\n")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = (
        f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(lang('documents.index.intro'))}</p>\n"
        f"<table>\n<tr>{head}</tr>\n{''.join(rows)}</table>\n"
    )
    return _html_page(title, lang, body)


def province_index(plan: Plan, folder: Path, names: Mapping[str, str], lang: Language) -> str:
    """The HTML list of the kabupaten whose documents are in `folder`, with their trips and hand-overs."""
    header = [
        lang("documents.index.kabupaten"),
        lang("documents.index.trips"),
        lang("documents.index.handovers"),
    ]
    rows = []
    for code in sorted({r.kabupaten_code for r in plan.routes}):
        if not (folder / code / "index.html").is_file():
            continue
        routes = [r for r in plan.routes if r.kabupaten_code == code and r.stops]
        handovers = sum(1 for r in routes for s in r.stops if any(s.deliver.values()))
        name = names.get(code) or lang("documents.kabupaten_unknown", code=code)
        link = f'<td><a href="{html.escape(code, quote=True)}/index.html">{html.escape(f"{code} {name}")}</a></td>'
        rows.append(f"<tr>{link}{_cells([str(len(routes)), str(handovers)], (0, 1))}</tr>\n")
    title = lang("documents.index.title")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = (
        f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(lang('documents.index.intro'))}</p>\n"
        f"<p>{html.escape(lang('documents.plan', scenario=plan.scenario.name))}</p>\n"
        f"<table>\n<tr>{head}</tr>\n{''.join(rows)}</table>\n"
    )
    return _html_page(title, lang, body)


def write_documents(
    plan: Plan,
    network: Any,
    items: Any,
    node_info: pd.DataFrame | None,
    out_dir: str | Path,
    lang_code: str = DEFAULT_LANGUAGE,
    kabupaten: str | None = None,
    names: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write the surat jalan + BAST of every trip (or of one kabupaten) as PDF and XLSX, and the index pages.

    Layout: `<out_dir>/documents/<kabupaten code>/surat-jalan-<vehicle>-<trip>.pdf|.xlsx`, an `index.html` per
    kabupaten and `<out_dir>/documents/index.html` for all. Every document is built before the first file is
    written, so bad input (an unknown kabupaten, a leg that does not fit) writes nothing; documents of trips
    no longer in the plan are removed from the kabupaten's folder.
    """
    lang = language(lang_code)
    check_plan_references(plan, network)
    names = dict(names or {})
    documents = trip_documents(plan, network, items, node_info, names, kabupaten)
    folder = Path(out_dir) / DOCUMENTS_DIR
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="planner-fonts-") as fonts_dir:
        # fpdf2 embeds only the glyphs a PDF uses: a trip's PDF is the same with or without --kabupaten
        fonts = subset_fonts(document_characters(documents, lang), Path(fonts_dir))
        for code in sorted({d.kabupaten_code for d in documents}):
            group = [d for d in documents if d.kabupaten_code == code]
            stems = document_stems(group)
            kab_dir = folder / code
            kept = []
            for document in group:
                stem = stems[(document.vehicle_id, document.trip)]
                kept.append(write_bytes(kab_dir / f"{stem}.pdf", render_pdf(document, lang, fonts)))
                kept.append(
                    _write_workbook(
                        build_workbook(document, lang), kab_dir / f"{stem}.xlsx", document.departure
                    )
                )
            _remove_stale(kab_dir, kept)
            kept.append(write_text(kab_dir / "index.html", kabupaten_index(group, stems, lang)))
            written += kept
    written.append(write_text(folder / "index.html", province_index(plan, folder, names, lang)))
    return written


def _remove_stale(folder: Path, keep: Sequence[Path]) -> None:
    kept = {p.resolve() for p in keep}
    for pattern in ("surat-jalan-*.pdf", "surat-jalan-*.xlsx"):
        for path in folder.glob(pattern):
            if path.resolve() not in kept:
                path.unlink()
