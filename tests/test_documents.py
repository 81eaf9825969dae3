"""Surat jalan and BAST documents (planner.documents) and `planner report --kabupaten --lang`."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from planner.cli import build_app
from planner.documents import (
    document_items,
    render_pdf,
    segment_words,
    tps_numbers,
    tps_ranges,
    trip_documents,
    write_documents,
)
from planner.errors import InputError
from planner.i18n import language
from planner.network import write_network
from planner.plan import write_plan

ROOT = Path(__file__).resolve().parent.parent
KALTIM = ROOT / "networks" / "kaltim"
MAHULU_SCENARIO = ROOT / "scenarios" / "mahulu-river.yaml"
KABUPATEN = "64.99"
KABUPATEN_NAME = "Kabupaten <i>Uji</i>"
FORMULA_NAME = '=HYPERLINK("http://example.invalid","klik")'
needs_pdftotext = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="pdftotext not installed (apt-get install poppler-utils)"
)
needs_pdftoppm = pytest.mark.skipif(
    shutil.which("pdftoppm") is None, reason="pdftoppm not installed (apt-get install poppler-utils)"
)
# the test catalog with its rules: ink is the per-TPS item (2 bottles per TPS), forms go to the PPK
ITEM_RULES = {
    "kotak_suara": ("per_election_per_tps", 1),
    "surat_suara": ("per_voter_reserve", 1),
    "tinta": ("per_tps", 2),
    "formulir": ("per_ppk", 1),
}


@pytest.fixture
def documents_items(maps_items) -> list[dict]:
    return [
        item | {"rule": ITEM_RULES[item["id"]][0], "per": ITEM_RULES[item["id"]][1]} for item in maps_items
    ]


@pytest.fixture
def documents_written(tmp_path, maps_plan, maps_network, documents_items, maps_node_info) -> list[Path]:
    return write_documents(
        maps_plan, maps_network, documents_items, maps_node_info, tmp_path, names={KABUPATEN: KABUPATEN_NAME}
    )


def _pdf_text(path: Path) -> str:
    done = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, text=True, check=True)
    return done.stdout


def _squeezed(text: str) -> str:
    """Text without white space: table cells wrap long names over lines."""
    return re.sub(r"\s+", "", text)


def _pdf_for(written: list[Path], vehicle: str) -> Path:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", vehicle).strip("._")
    (path,) = [p for p in written if p.suffix == ".pdf" and stem in p.name]
    return path


def _kg(quantities: Counter, items: list[dict]) -> float:
    return sum(q * next(i["unit_kg"] for i in items if i["id"] == item) for item, q in quantities.items())


# ---------------------------------------------------------------- the document model


def test_tps_numbers_come_from_the_stop_or_from_the_desa_count():
    assert tps_numbers(SimpleNamespace(tps_kits=[5, 3]), 6) == (3, 5)
    assert tps_numbers(SimpleNamespace(tps_kits=[]), 4) == (1, 2, 3, 4)
    assert tps_numbers(SimpleNamespace(), 2) == (1, 2)
    assert tps_numbers(SimpleNamespace(), None) == ()
    assert tps_ranges([1, 2, 3, 5, 7, 8]) == "1-3, 5, 7-8"


def test_handover_parties_and_goods_follow_the_plan(maps_plan, maps_network, documents_items, maps_node_info):
    documents = trip_documents(maps_plan, maps_network, documents_items, maps_node_info, {KABUPATEN: "Kab"})
    by_vehicle = {d.vehicle_id: d for d in documents}
    truck = by_vehicle["truck@wh:64.99#1"]
    assert [h.receiver.role for h in truck.handovers] == ["ppk", "ppk", "carrier"]
    assert {h.giver.role for h in truck.handovers} == {"kpu"}
    assert truck.handovers[2].receiver.name == "navy@port:lanal_sangatta#1"  # the ship takes the drop on
    pickup = by_vehicle["pickup@ppk:64.99.01#1"]
    (handover,) = pickup.handovers
    assert (handover.giver.role, handover.giver.name) == ("ppk", "PPK Alpha")
    assert handover.receiver.role == "pps"
    assert handover.goods.tps_numbers == (1, 2)  # the desa has 2 TPS
    # 8 bottles of ink at 2 per TPS: the truck hands 4 TPS kits and 3 sets of PPK forms to PPK Alpha
    assert truck.handovers[0].goods.kits == 4 and truck.handovers[0].goods.packages == 4 + 3
    for document in documents:
        route = next(
            r for r in maps_plan.routes if (r.vehicle_id, r.trip) == (document.vehicle_id, document.trip)
        )
        planned = Counter()
        for stop in route.stops:
            planned.update(stop.deliver)
        handed = Counter()
        for h in document.handovers:
            handed.update({line.item_id: line.quantity for line in h.goods.lines})
        assert handed == planned
        assert document.delivered.kg == pytest.approx(_kg(planned, documents_items), abs=1e-3)
        assert [s.place.node_id for s in document.stops] == [s.node_id for s in route.stops]


def test_route_in_words_names_modes_rivers_and_the_network_road_class_and_crossing(
    maps_plan, maps_network, documents_items
):
    legs = maps_network.legs.copy()
    legs["road_class"] = ""
    legs["crossing"] = ""
    legs.loc["road:wh:64.99-ppk:64.99.01", "road_class"] = "jalan provinsi"
    legs.loc["road:ppk:64.99.01-ppk:64.99.02", "crossing"] = "Feri Sungai Uji"
    network = SimpleNamespace(nodes=maps_network.nodes, legs=legs)
    documents = {d.vehicle_id: d for d in trip_documents(maps_plan, network, documents_items, None)}
    lang = language("id")
    truck_way = [
        segment_words(s, lang) for stop in documents["truck@wh:64.99#1"].stops for s in stop.route_here
    ]
    assert (
        truck_way[0]
        == "jalan darat 15,0 km, kelas jalan: jalan provinsi dari Gudang KPU Kabupaten Uji ke PPK Alpha"
    )
    assert "penyeberangan: Feri Sungai Uji" in truck_way[1]
    boat = documents["longboat@ppk:64.99.01#1"]
    out_words = [segment_words(s, lang) for s in boat.stops[1].route_here]
    assert [s.mode for s in boat.stops[1].route_here] == ["road", "access", "river", "access"]
    assert out_words[2] == "sungai 16,0 km, milir (ke hilir) dari Jetty A ke Jetty B"
    back = [segment_words(s, language("en")) for s in boat.stops[2].route_here]
    assert back[1] == "river 16.0 km, upstream from Jetty B to Jetty A"


def test_a_leg_that_does_not_join_the_stops_is_a_user_error(maps_plan, maps_network, documents_items):
    route = maps_plan.routes[1]
    broken = route.model_copy(update={"legs": ["road:ppk:64.99.02-pps:64.99.02.2001", *route.legs]})
    plan = maps_plan.model_copy(update={"routes": [broken]})
    with pytest.raises(InputError, match="does not start at ppk:64.99.01"):
        trip_documents(plan, maps_network, documents_items, None)


def test_unknown_kabupaten_is_a_user_error_naming_those_in_the_plan(
    tmp_path, maps_plan, maps_network, documents_items
):
    with pytest.raises(InputError, match=r"kabupaten '64\.02' has no trip.*64\.99"):
        write_documents(maps_plan, maps_network, documents_items, None, tmp_path, kabupaten="64.02")
    assert not (tmp_path / "documents").exists()


# ---------------------------------------------------------------- PDF


@needs_pdftotext
def test_pdf_has_indonesian_headings_every_stop_tps_number_and_the_plan_totals(
    documents_written, maps_plan, maps_network, documents_items, maps_node_info
):
    lang = language("id")
    tps = dict(zip(maps_node_info["node_id"], maps_node_info["tps"], strict=True))
    for route in maps_plan.routes:
        text = _pdf_text(_pdf_for(documents_written, route.vehicle_id))
        flat = _squeezed(text)
        for heading in ("KOMISI PEMILIHAN UMUM KABUPATEN <I>UJI</I>", "SURAT JALAN", "Rute perjalanan"):
            assert _squeezed(heading) in flat
        assert _squeezed(f"Berangkat : {lang.datetime(route.stops[0].departure)}") in flat
        assert re.search(r"(Sabtu|Minggu|Senin),2[345]November2024,\d\d\.\d\dWITA", flat)
        assert flat.count(_squeezed("BERITA ACARA SERAH TERIMA LOGISTIK")) == sum(
            1 for s in route.stops if s.deliver
        )
        first_page = _squeezed(text.split("\f")[0])
        names = [maps_network.nodes.at[s.node_id, "name"] for s in route.stops]
        positions = [first_page.find(_squeezed(name)) for name in names]
        assert all(p >= 0 for p in positions), names
        assert positions[1:-1] == sorted(positions[1:-1])  # stops in order
        pages = text.count("\f")
        assert f"Halaman1dari{pages}" in flat and f"Halaman{pages}dari{pages}" in flat
        for stop in route.stops:
            if stop.node_id.startswith("pps:") and stop.deliver:
                for number in range(1, tps[stop.node_id] + 1):
                    assert _squeezed(f"Paket logistik TPS {number} (disegel)") in flat
            if stop.deliver:
                kg = lang.number(_kg(Counter(stop.deliver), documents_items), 1)
                assert re.search(rf"Jumlahdiserahkan:\d+paket,{re.escape(kg)}kg", flat), (
                    route.vehicle_id,
                    kg,
                )
                for item, quantity in stop.deliver.items():
                    name = next(i["name"] for i in documents_items if i["id"] == item)
                    row = (
                        re.escape(_squeezed(name))
                        + r"\((isipaketTPS|untukPPK|untukPPS)\)"
                        + re.escape(lang.number(quantity))
                    )
                    assert re.search(row, flat), (name, quantity)  # the BAST's line of the item


@needs_pdftotext
def test_pdf_draws_data_as_plain_text(tmp_path, maps_plan, maps_network, documents_items):
    network = SimpleNamespace(nodes=maps_network.nodes.copy(), legs=maps_network.legs)
    network.nodes.loc["pps:64.99.02.2002", "name"] = "Desa {nb} **tebal** <b>x</b>"
    (document,) = [
        d
        for d in trip_documents(maps_plan, network, documents_items, None)
        if d.vehicle_id.startswith("navy")
    ]
    target = tmp_path / "navy.pdf"
    target.write_bytes(render_pdf(document))
    flat = _squeezed(_pdf_text(target))
    assert _squeezed("Desa {nb} **tebal** <b>x</b>") in flat  # no page-count alias, no markdown, no HTML
    assert _squeezed("Halaman 1 dari 2") in flat


def test_same_plan_gives_the_same_bytes(tmp_path, maps_plan, maps_network, documents_items, maps_node_info):
    first = write_documents(maps_plan, maps_network, documents_items, maps_node_info, tmp_path / "a")
    second = write_documents(maps_plan, maps_network, documents_items, maps_node_info, tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert any(p.suffix == ".pdf" for p in first) and any(p.suffix == ".xlsx" for p in first)


def test_a_trip_gives_the_same_bytes_with_or_without_kabupaten(
    tmp_path, maps_plan, maps_network, documents_items
):
    network = SimpleNamespace(nodes=maps_network.nodes.copy(), legs=maps_network.legs)
    network.nodes.loc["pps:64.99.02.2001", "name"] = (
        "Désa Ωmega"  # only the other kabupaten's trip goes there
    )
    other = maps_plan.routes[3].model_copy(update={"kabupaten_code": "64.98"})
    plan = maps_plan.model_copy(update={"routes": [*maps_plan.routes[:3], maps_plan.routes[4], other]})
    every = write_documents(plan, network, documents_items, None, tmp_path / "all")
    one = write_documents(plan, network, documents_items, None, tmp_path / "one", kabupaten=KABUPATEN)
    assert {p.parent.name for p in one if p.suffix == ".pdf"} == {KABUPATEN}
    for path in (p for p in one if p.suffix == ".pdf"):
        twin = tmp_path / "all" / path.relative_to(tmp_path / "one")
        assert twin in every and twin.read_bytes() == path.read_bytes()


@needs_pdftoppm
def test_pdf_page_renders_on_a4(tmp_path, documents_written):
    from PIL import Image

    pdf = _pdf_for(documents_written, "truck@wh:64.99#1")
    subprocess.run(
        ["pdftoppm", "-r", "72", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True
    )
    (png,) = tmp_path.glob("page*.png")
    with Image.open(png) as image:
        width, height = image.size  # A4 is 595.3 x 841.9 pt: at 72 dpi one pixel each
        assert abs(width - 595.3) < 1 and abs(height - 841.9) < 1, image.size
        grey = image.convert("L")
        assert grey.getextrema()[0] < 80  # something dark is printed on it
    shutil.copy(png, Path(pdf).with_suffix(".page1.png"))  # kept next to the PDF for a look


# ---------------------------------------------------------------- XLSX


def test_xlsx_prints_on_a4_landscape_fit_to_width_with_repeated_header(documents_written):
    workbooks = [p for p in documents_written if p.suffix == ".xlsx"]
    assert workbooks
    for path in workbooks:
        book = load_workbook(path)
        assert book.sheetnames[0] == "Surat jalan"
        for sheet in book.worksheets:
            setup = sheet.page_setup
            assert int(setup.paperSize) == 9  # A4 in the OOXML paper size table
            assert setup.orientation == "landscape"
            assert setup.fitToWidth == 1 and setup.fitToHeight == 0
            assert sheet.sheet_properties.pageSetUpPr.fitToPage
            match = re.fullmatch(r"\$?(\d+):\$?(\d+)", sheet.print_title_rows)
            assert match and match.group(1) == match.group(2)
            assert sheet.cell(row=int(match.group(1)), column=1).value == "No."


def test_xlsx_and_csv_keep_a_formula_looking_name_as_text(tmp_path, maps_plan, maps_network, documents_items):
    network = SimpleNamespace(nodes=maps_network.nodes.copy(), legs=maps_network.legs, source=None)
    network.nodes.loc["pps:64.99.01.2001", "name"] = FORMULA_NAME
    written = write_documents(
        maps_plan, network, documents_items, None, tmp_path, names={KABUPATEN: "Uji & Co"}
    )
    pickup = [p for p in written if p.suffix == ".xlsx" and "pickup_ppk_64.99.01" in p.name]
    (path,) = pickup
    book = load_workbook(path)
    cells = [
        c for sheet in book.worksheets for row in sheet.iter_rows() for c in row if c.value == FORMULA_NAME
    ]
    assert cells and all(c.data_type == "s" for c in cells)
    assert "UJI && CO" in book.worksheets[0].oddHeader.center.text  # '&' starts a code in a print header
    with zipfile.ZipFile(path) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/sheet")]
        assert not any(b"<f>" in archive.read(n) or b"<f " in archive.read(n) for n in sheets)


# ---------------------------------------------------------------- the command and the index


@pytest.fixture
def documents_plan_on_disk(tmp_path, maps_plan, maps_network, maps_node_info) -> Path:
    network_path = write_network(maps_network, tmp_path / "net" / "network.gpkg")
    other = maps_plan.routes[3].model_copy(update={"kabupaten_code": "64.98"})
    plan = maps_plan.model_copy(update={"network": str(network_path), "routes": [*maps_plan.routes, other]})
    plan_path = write_plan(plan, tmp_path / "run" / "plan.json")
    maps_node_info.to_csv(tmp_path / "run" / "demand-pps.csv", index=False)
    return plan_path


@needs_pdftotext
def test_report_writes_one_kabupaten_in_english(documents_plan_on_disk):
    run = documents_plan_on_disk.parent
    result = CliRunner().invoke(
        build_app(), ["report", str(documents_plan_on_disk), "--kabupaten", KABUPATEN, "--lang", "en"]
    )
    assert result.exit_code == 0, result.output
    folder = run / "documents"
    assert sorted(p.name for p in folder.iterdir()) == [KABUPATEN, "index.html"]  # not 64.98
    pdfs = sorted((folder / KABUPATEN).glob("surat-jalan-*.pdf"))
    assert len(pdfs) == 5 and len(list((folder / KABUPATEN).glob("surat-jalan-*.xlsx"))) == 5
    flat = _squeezed(_pdf_text(pdfs[0]))
    assert _squeezed("WAYBILL (SURAT JALAN)") in flat and "Stopsandhand-overs" in flat
    assert "Tempatsinggah" not in flat and "Pihak" not in flat
    assert _squeezed("RECORD OF HAND-OVER OF LOGISTICS") in flat
    assert _squeezed("Page 1 of") in flat
    index = (folder / KABUPATEN / "index.html").read_text(encoding="utf-8")
    assert index.count('.pdf">PDF</a>') == 5
    assert "<script>" not in index
    assert (run / "manifests").is_dir()  # the manifests are still written


def test_report_index_lists_kabupaten_and_escapes_data(documents_plan_on_disk):
    result = CliRunner().invoke(build_app(), ["report", str(documents_plan_on_disk), "--no-maps"])
    assert result.exit_code == 0, result.output
    folder = documents_plan_on_disk.parent / "documents"
    index = (folder / "index.html").read_text(encoding="utf-8")
    assert 'href="64.98/index.html"' in index and 'href="64.99/index.html"' in index
    assert "Dokumen distribusi logistik" in index and 'lang="id"' in index
    assert "http" not in index  # offline: nothing to fetch
    assert len(list((folder / "64.98").glob("*.pdf"))) == 1


def test_report_unknown_kabupaten_or_language_is_exit_2_and_writes_nothing(documents_plan_on_disk):
    import sys

    run = documents_plan_on_disk.parent
    for args, message in (
        (["--kabupaten", "64.02"], "has no trip"),
        (["--lang", "fr"], "unknown language 'fr'"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "planner.cli", "report", str(documents_plan_on_disk), *args],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
        assert not (run / "documents").exists() and not (run / "manifests").exists()


@needs_pdftotext
def test_real_catalog_and_demand_give_every_tps_of_a_mahulu_desa(tmp_path, maps_kaltim_plan):
    from planner.network import load_network
    from planner.scenario import load_inputs, load_scenario

    plan = maps_kaltim_plan(load_network(KALTIM), kabupaten="64.11")
    inputs = load_inputs(load_scenario(MAHULU_SCENARIO))
    info = pd.concat(
        [inputs.demand.pps[["node_id", "tps", "dpt"]], inputs.demand.ppk[["node_id", "tps", "dpt"]]]
    )
    written = write_documents(
        plan, inputs.network, inputs.items, info, tmp_path, names={"64.11": "Mahakam Ulu"}
    )
    items = document_items(inputs.items)
    assert {i.scope for i in items} == {"tps", "pps", "ppk"}
    route = next(r for r in plan.routes if r.tier == 2 and len(r.stops) > 3)
    flat = _squeezed(_pdf_text(_pdf_for(written, route.vehicle_id)))
    tps = dict(zip(info["node_id"], info["tps"], strict=True))
    for stop in route.stops[1:-1]:
        assert _squeezed(str(inputs.network.nodes.at[stop.node_id, "name"])) in flat
        for number in range(1, int(tps[stop.node_id]) + 1):
            assert f"PaketlogistikTPS{number}(disegel)" in flat
        assert _squeezed(f"Paket TPS {tps_ranges(range(1, int(tps[stop.node_id]) + 1))}") in flat
