"""Issue 16 sections 1-2: nothing read from data is ever evaluated on the way out.

Every string a plan, a network or a catalog brings (desa and warehouse names, vehicle ids and types, leg ids
and notes, unserved reasons and details, the scenario name, item names) is put into the maps, manifests and
summaries as text: not as template text (a `{{ ... }}` shows as written and runs nothing), not as HTML (a
`<script>` shows as text), not as a spreadsheet formula (an `=HYPERLINK(...)` is a text cell).
Each test runs in its own temporary folder, where a template that ran would leave `pwned.txt`.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from planner.cli import build_app
from planner.contingency import leg_facts, leg_impact, ranked, write_impact_csv
from planner.contingency_report import write_contingency_map
from planner.maps import DATA_ELEMENT_ID, build_map_content, load_boundaries, render_map_html, write_map
from planner.network import Network, build_network, load_network, write_network
from planner.outputs import write_outputs
from planner.plan import Plan, write_plan
from planner.report import write_reports

ROOT = Path(__file__).resolve().parent.parent
KALTIM = ROOT / "networks" / "kaltim"

MATH = "{{ 7*7 }}"
POPEN = "{{ cycler.__init__.__globals__.os.popen('id > pwned.txt').read() }}"
STATEMENT = "{% for x in range(3) %}loop{% endfor %}{# gone #}"
SCRIPT = "<script>alert(1)</script>"
END_SCRIPT = "</script><b>after</b>"
FORMULA = '=HYPERLINK("http://evil.example/x","klik")'
TEMPLATES = (MATH, POPEN, STATEMENT)
EVERYTHING = (*TEMPLATES, SCRIPT, END_SCRIPT, FORMULA)


# ---------------------------------------------------------------- hostile inputs


def hostile_network(network: Network) -> Network:
    """`network` with every desa, PPK, warehouse and port renamed to a hostile string and hostile leg notes."""
    nodes = network.nodes.copy()
    names = {
        "pps:64.99.01.2001": MATH,
        "pps:64.99.01.2002": POPEN,
        "pps:64.99.02.2001": STATEMENT,
        "pps:64.99.02.2002": SCRIPT,
        "pps:64.99.02.2003": END_SCRIPT,
        "ppk:64.99.01": FORMULA,
        "ppk:64.99.02": f"PPK {POPEN}",
        "wh:64.99": f"Gudang {MATH} {END_SCRIPT}",
        "port:lanal_sangatta": f"Lanal {POPEN}",
        "seaport:64.99.02.2002": f"Dermaga {FORMULA}",
    }
    for node_id, name in names.items():
        nodes.loc[node_id, "name"] = name
    legs = network.legs.copy()
    legs["note"] = POPEN
    return replace(network, nodes=nodes, legs=legs)


def hostile_plan(plan: Plan) -> Plan:
    """`plan` with every free-text field hostile: scenario name, vehicle ids and types, unserved reason text."""
    bad = plan.model_copy(deep=True)
    bad.scenario.name = f"{POPEN} {SCRIPT}"
    payloads = [MATH, POPEN, STATEMENT, FORMULA, END_SCRIPT]
    for index, route in enumerate(bad.routes):
        route.vehicle_id = f"{payloads[index % len(payloads)]} #{index}"
        route.vehicle_type = payloads[(index + 1) % len(payloads)]
    bad.unserved[0].detail = f"{POPEN} {FORMULA}"
    return bad


def hostile_items(items: list[dict]) -> list[dict]:
    out = [dict(item) for item in items]
    out[0]["name"] = f"{FORMULA}"
    out[1]["name"] = f"Surat {MATH}"
    return out


# ---------------------------------------------------------------- reading what was written


def page_data(page: str) -> dict[str, Any]:
    """The JSON the map page draws from (its one application/json script)."""
    match = re.search(
        rf'<script type="application/json" id="{DATA_ELEMENT_ID}">(.*?)</script>', page, flags=re.DOTALL
    )
    assert match is not None, "the map page has no data element"
    return json.loads(match.group(1))


def strings(value: Any) -> list[str]:
    """Every string inside a JSON value, as written and with HTML entities decoded (legend, layer names)."""
    if isinstance(value, str):
        return [value, html.unescape(value)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def assert_literal(page: str, payloads: tuple[str, ...]) -> None:
    """Each payload is in the page's data as written, and outside the data element nothing of it shows."""
    texts = strings(page_data(page))
    for payload in payloads:
        assert any(payload in text for text in texts), f"{payload!r} did not reach the page as text"
    outside = re.sub(
        r'<script type="application/json".*?</script>|<title>.*?</title>', "", page, flags=re.DOTALL
    )
    for payload in (*TEMPLATES, SCRIPT, END_SCRIPT):
        assert payload not in outside
    title = re.search(r"<title>(.*?)</title>", page, flags=re.DOTALL)
    assert title is not None and "<" not in title.group(1)
    assert page.count("<script") == page.count("</script>")  # no name closed a script early


def assert_nothing_ran(*folders: Path) -> None:
    for folder in folders:
        assert not (folder / "pwned.txt").exists(), f"a template ran a command in {folder}"


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    """Work in a fresh folder: a command run by a template would write pwned.txt here."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---------------------------------------------------------------- 1. no template evaluation


@pytest.mark.parametrize("audience", ["kpu", "lanal"])
def test_templates_in_names_and_plan_fields_come_out_literal(
    in_tmp, audience, maps_plan, maps_network, maps_node_info, maps_items, maps_boundaries
):
    network = hostile_network(maps_network)
    plan = hostile_plan(maps_plan)
    boundaries = replace(
        maps_boundaries, kabupaten=maps_boundaries.kabupaten.assign(name=f"Kabupaten {MATH} {POPEN}")
    )
    page = write_map(
        plan,
        network,
        maps_node_info,
        audience,
        in_tmp / "map.html",
        items=hostile_items(maps_items),
        boundaries=boundaries,
    ).read_text(encoding="utf-8")
    assert_nothing_ran(in_tmp, ROOT)
    assert "49" not in [t.strip() for t in strings(page_data(page))]
    expected = (MATH, POPEN) if audience == "lanal" else (*TEMPLATES, SCRIPT, END_SCRIPT, FORMULA)
    assert_literal(page, expected)
    data = page_data(page)
    titles = {
        f["properties"].get("id"): f["properties"]["t"] for layer in data["layers"] for f in layer["features"]
    }
    if audience == "kpu":
        assert titles["pps:64.99.01.2001"] == MATH
        assert titles["pps:64.99.01.2002"] == POPEN
        assert titles["pps:64.99.02.2001"] == STATEMENT
        assert titles["pps:64.99.02.2003"] == END_SCRIPT
        unserved = next(
            f
            for layer in data["layers"]
            for f in layer["features"]
            if f["properties"].get("id") == "pps:64.99.02.2003"
        )
        assert any(POPEN in value and FORMULA in value for _, value in unserved["properties"]["r"])
    else:
        assert titles["port:lanal_sangatta"] == f"Lanal {POPEN}"


def test_a_template_made_of_the_page_markers_stays_text(in_tmp, maps_plan, maps_network):
    """The page's own slot markers in a name are not filled: inserted text is never scanned again."""
    network = hostile_network(maps_network)
    nodes = network.nodes.copy()
    nodes.loc["pps:64.99.01.2001", "name"] = "@@planner-slot-data@@ @@planner-slot-leaflet_js@@"
    page = render_map_html(build_map_content(maps_plan, replace(network, nodes=nodes), None, "kpu"))
    titles = [f["properties"]["t"] for layer in page_data(page)["layers"] for f in layer["features"]]
    assert "@@planner-slot-data@@ @@planner-slot-leaflet_js@@" in titles
    assert len(page) < 2 * len(render_map_html(build_map_content(maps_plan, network, None, "kpu")))


def test_map_and_report_commands_on_a_hostile_plan_json_run_nothing(
    in_tmp, maps_plan, maps_network, maps_node_info
):
    network_path = write_network(hostile_network(maps_network), in_tmp / "net" / "network.gpkg")
    plan = hostile_plan(maps_plan).model_copy(update={"network": str(network_path)})
    plan_path = write_plan(plan, in_tmp / "plan.json")
    maps_node_info.to_csv(in_tmp / "demand-pps.csv", index=False)
    app = build_app()
    for args in (["map", str(plan_path)], ["map", str(plan_path), "--audience", "lanal"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["report", str(plan_path), "--maps", "--out", str(in_tmp / "out")])
    assert result.exit_code == 0, result.output
    assert_nothing_ran(in_tmp, in_tmp / "out", ROOT)
    assert_literal((in_tmp / "map-kpu.html").read_text(encoding="utf-8"), (*TEMPLATES, SCRIPT, END_SCRIPT))
    assert_literal((in_tmp / "out" / "map-kpu.html").read_text(encoding="utf-8"), (MATH, POPEN))
    assert_literal((in_tmp / "map-lanal.html").read_text(encoding="utf-8"), (POPEN,))


def _fake_inputs(network: Network, items: list[dict], node_info: pd.DataFrame) -> SimpleNamespace:
    pps = node_info[node_info["node_id"].str.startswith("pps:")]
    ppk = node_info[node_info["node_id"].str.startswith("ppk:")]
    return SimpleNamespace(network=network, items=items, demand=SimpleNamespace(pps=pps, ppk=ppk))


def test_solve_and_replan_outputs_of_a_hostile_plan_are_literal(
    in_tmp, maps_plan, maps_network, maps_node_info, maps_items
):
    """write_outputs is what `solve` and `replan` write: plan.json, CSVs, manifests, summaries, maps."""
    network = load_network(write_network(hostile_network(maps_network), in_tmp / "net" / "network.gpkg"))
    plan = hostile_plan(maps_plan)
    changed = [(plan.routes[0].vehicle_id, 1)]
    written = write_outputs(
        plan,
        _fake_inputs(network, hostile_items(maps_items), maps_node_info),
        in_tmp / "out",
        changed=changed,
    )
    assert_nothing_ran(in_tmp, in_tmp / "out", ROOT)
    assert_literal((in_tmp / "out" / "map-kpu.html").read_text(encoding="utf-8"), EVERYTHING)
    stops = (in_tmp / "out" / "stops.csv").read_text(encoding="utf-8")
    assert MATH in stops and POPEN in stops
    unserved = list(csv.DictReader((in_tmp / "out" / "unserved.csv").open(encoding="utf-8")))
    assert unserved[0]["detail"] == f"{POPEN} {FORMULA}"
    assert any(p.suffix == ".xlsx" for p in written)


def test_the_contingency_map_shows_hostile_names_as_text(in_tmp, maps_network):
    network = hostile_network(maps_network)
    baseline = {
        "64.99": {
            "km_by_mode": {"road": 10.0, "river": 0.0, "sea": 0.0, "access": 0.0},
            "travel_hours": 1.0,
            "vehicle_hours": 2.0,
            "pps_arrival": {"pps:64.99.01.2002": 100},
            "unserved": {},
            "trips_on_leg": {"road:ppk:64.99.01-pps:64.99.01.2001": 1},
        }
    }
    case = {
        "replanned": ["64.99"],
        "kabupaten": {"64.99": {**baseline["64.99"], "unserved": {"pps:64.99.01.2002": "unreachable"}}},
    }
    leg = "road:ppk:64.99.01-pps:64.99.01.2001"
    rows = ranked([leg_impact(leg, baseline, case, pps_deadline=800)])
    rows = [{**leg_facts(network, row["leg_id"]), **row} for row in rows]
    inputs = SimpleNamespace(scenario=SimpleNamespace(name=f"{MATH} {SCRIPT}"), kabupaten=["64.99"])
    page = write_contingency_map(rows, network, inputs, in_tmp / "contingency-map.html").read_text(
        encoding="utf-8"
    )
    assert_nothing_ran(in_tmp, ROOT)
    assert_literal(page, (MATH, POPEN, SCRIPT, FORMULA))
    csv_text = write_impact_csv(rows, in_tmp / "contingency.csv").read_text(encoding="utf-8")
    assert "'" + FORMULA.replace('"', '""') in csv_text  # the PPK's name, quoted as text


@pytest.mark.skipif(not (KALTIM / "network.yaml").is_file(), reason="networks/kaltim missing")
def test_a_desa_name_in_desa_geojson_survives_network_build_as_text(tmp_path, monkeypatch, maps_kaltim_plan):
    folder = tmp_path / "kaltim"
    shutil.copytree(KALTIM, folder, ignore=shutil.ignore_patterns("network.gpkg"))
    desa = folder / "source" / "desa.geojson"
    collection = json.loads(desa.read_text(encoding="utf-8"))
    bontang = [f for f in collection["features"] if f["properties"]["code"].startswith("64.74.")]
    bontang[0]["properties"]["name"] = POPEN
    bontang[1]["properties"]["name"] = MATH
    desa.write_text(json.dumps(collection), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    network = build_network(folder)
    node = f"pps:{bontang[0]['properties']['code']}"
    assert network.nodes.at[node, "name"] == POPEN
    plan = maps_kaltim_plan(network, kabupaten="64.74")
    page = write_map(
        plan, network, None, "kpu", tmp_path / "map.html", boundaries=load_boundaries(folder)
    ).read_text(encoding="utf-8")
    assert_nothing_ran(tmp_path, ROOT)
    assert_literal(page, (POPEN, MATH))
    write_reports(plan, network, None, None, tmp_path / "reports")
    assert_nothing_ran(tmp_path, ROOT)


# ---------------------------------------------------------------- 2. no spreadsheet formulas from data

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def xlsx_sheets(path: Path) -> dict[str, str]:
    """The worksheet XML and shared strings of a workbook, by member name."""
    with zipfile.ZipFile(path) as archive:
        return {
            name: archive.read(name).decode("utf-8")
            for name in archive.namelist()
            if name.startswith("xl/worksheets/") or name == "xl/sharedStrings.xml"
        }


def assert_no_formulas(path: Path, *texts: str) -> None:
    """No `<f>` element in any sheet of `path`, and each of `texts` is a string cell (with the quote prefix)."""
    members = xlsx_sheets(path)
    for name, xml in members.items():
        assert "<f>" not in xml and "<f " not in xml, f"{path.name}:{name} has a formula"
    strings_xml = members.get("xl/sharedStrings.xml", "") + "".join(members.values())
    for text in texts:
        assert html.escape(text, quote=False) in strings_xml or html.escape(text) in strings_xml, text


def csv_cells(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def assert_csv_cells_safe(path: Path, *texts: str) -> None:
    """Every cell that would start a formula carries the quote prefix; each of `texts` is there, prefixed."""
    cells = csv_cells(path)
    for cell in cells:
        if cell.startswith(FORMULA_STARTS) and cell != "-":
            raise AssertionError(f"{path.name}: cell {cell!r} would run as a formula")
    for text in texts:
        assert "'" + text in cells or any(("'" + text) in cell for cell in cells), f"{path.name}: {text!r}"


@pytest.fixture
def formula_network(maps_network) -> Network:
    nodes = maps_network.nodes.copy()
    for node_id in ("pps:64.99.01.2001", "pps:64.99.02.2002", "ppk:64.99.01", "pps:64.99.02.2003"):
        nodes.loc[node_id, "name"] = FORMULA
    nodes.loc["wh:64.99", "name"] = "@SUM(A1:A9)"
    return replace(maps_network, nodes=nodes)


def formula_plan(plan: Plan) -> Plan:
    bad = plan.model_copy(deep=True)
    bad.scenario.name = "+cmd|' /C calc'!A0"
    bad.routes[0].vehicle_id = "-2+3+cmd|' /C calc'!A0"
    bad.routes[1].vehicle_type = "@SUM(1+1)*cmd|' /C calc'!A0"
    bad.unserved[0].detail = FORMULA
    return bad


def test_manifests_and_summaries_have_no_formulas(
    in_tmp, maps_plan, formula_network, maps_node_info, maps_items
):
    items = [dict(item) for item in maps_items]
    items[1]["name"] = "=1+1"  # an item name is a column header
    plan = formula_plan(maps_plan)
    written = write_reports(plan, formula_network, items, maps_node_info, in_tmp / "out")
    workbooks = [p for p in written if p.suffix == ".xlsx"]
    manifests = [p for p in written if p.suffix == ".csv"]
    assert workbooks and manifests
    for workbook in workbooks:
        assert_no_formulas(workbook)
    summary = next(p for p in workbooks if p.name.endswith("-summary.xlsx"))
    assert_no_formulas(summary, FORMULA, "-2+3+cmd|' /C calc'!A0")
    truck = next(p for p in workbooks if p.parent.name == "manifests" and "calc" in p.name)
    assert_no_formulas(truck, FORMULA, "=1+1")
    for manifest in manifests:
        assert_csv_cells_safe(manifest)
    assert any(FORMULA in "".join(csv_cells(m)) for m in manifests)
    # the cells are marked text in Excel's own way (quotePrefix), so they stay text when edited
    from openpyxl import load_workbook

    sheet = load_workbook(summary).worksheets[0]
    cells = [c for row in sheet.iter_rows() for c in row if c.value == "-2+3+cmd|' /C calc'!A0"]
    assert cells and all(c.data_type == "s" and c.quotePrefix for c in cells)


def test_solve_outputs_quote_formulas_in_every_csv(
    in_tmp, maps_plan, formula_network, maps_node_info, maps_items
):
    network = load_network(write_network(formula_network, in_tmp / "net" / "network.gpkg"))
    plan = formula_plan(maps_plan)
    write_outputs(plan, _fake_inputs(network, maps_items, maps_node_info), in_tmp / "out")
    out = in_tmp / "out"
    assert_csv_cells_safe(out / "stops.csv", "-2+3+cmd|' /C calc'!A0")
    assert_csv_cells_safe(out / "legs.csv")
    assert_csv_cells_safe(out / "unserved.csv", FORMULA)
    for workbook in out.rglob("*.xlsx"):
        assert_no_formulas(workbook)


def test_contingency_and_batch_csvs_quote_formulas(in_tmp, formula_network):
    from planner.batch import BatchRow, write_batch_summary

    leg = "road:ppk:64.99.01-pps:64.99.01.2001"
    rows = ranked([leg_impact(leg, {}, None, pps_deadline=800)])
    rows = [{**leg_facts(formula_network, row["leg_id"]), **row} for row in rows]
    assert_csv_cells_safe(write_impact_csv(rows, in_tmp / "contingency.csv"), FORMULA)
    batch = BatchRow(FORMULA, "=cmd", "solved", 1, 1, 1, 1.0, 0, 0, 1.0, "@out")
    assert_csv_cells_safe(write_batch_summary([batch], in_tmp / "batch-summary.csv"), FORMULA, "=cmd", "@out")


def test_demand_csvs_quote_a_formula_desa_name(in_tmp):
    from planner.demand import write_demand
    from planner.scenario import load_inputs, load_scenario

    demand = load_inputs(load_scenario(ROOT / "scenarios" / "mahulu-river.yaml")).demand
    pps = demand.pps.copy()
    pps.loc[0, "desa_name"] = FORMULA
    pps.loc[1, "kecamatan_name"] = "@HYPERLINK(1)"
    written = write_demand(replace(demand, pps=pps), in_tmp / "demand")
    assert_csv_cells_safe(written[0], FORMULA, "@HYPERLINK(1)")
    frame = pd.read_csv(written[0])
    assert (
        frame.loc[0, "desa_name"] == "'" + FORMULA
    )  # read back as the quoted text, never a number or formula


# ---------------------------------------------------------------- in the browser: names stay inert


@pytest.mark.browser
@pytest.mark.parametrize("audience", ["kpu", "lanal"])
def test_hostile_names_are_inert_text_in_the_browser(tmp_path, audience, maps_plan, maps_network, maps_items):
    from test_map_browser import LOCAL_SCHEMES, _chromium, _load_page

    binary = _chromium()
    if binary is None:
        pytest.skip("chromium not installed")
    network = hostile_network(maps_network)
    nodes = network.nodes.copy()
    nodes.loc["pps:64.99.02.2002", "name"] = SCRIPT + '<img src=x onerror="document.body.dataset.pwned=1">'
    network = replace(network, nodes=nodes)
    plan = hostile_plan(maps_plan)
    page = write_map(plan, network, None, audience, tmp_path / "map.html", items=hostile_items(maps_items))
    texts = (
        "({labels: Array.from(document.querySelectorAll('.kpu-label')).map(e => e.textContent),"
        " table: Array.from(document.querySelectorAll('#kpu-trips td')).map(e => e.textContent),"
        " labelHtml: Array.from(document.querySelectorAll('.kpu-label')).map(e => e.innerHTML).join(' ')})"
    )
    zoom_in = "(() => { const m = Object.values(window).find(v => v && v._leaflet_id && v.setZoom); m.setZoom(12); return true; })()"
    target = "pps:64.99.02.2002" if audience == "lanal" else "pps:64.99.02.2003"
    result = _load_page(
        binary, page.as_uri() + "#popup=" + target, tmp_path / "shot.png", actions=[zoom_in, texts]
    )
    assert result["dialogs"] == [], "a name ran as script"
    assert result["exceptions"] == [] and result["console_errors"] == []
    assert result["dom"]["pwned"] is None
    assert [u for u in result["requests"] if not u.startswith(LOCAL_SCHEMES)] == []
    popup = result["dom"]["popup"]
    assert popup is not None
    if audience == "kpu":
        assert END_SCRIPT in popup and POPEN in popup  # the name and the unserved detail, as written
    else:
        assert SCRIPT in popup
        table = " ".join(result["actions"][1]["table"])
        assert f"Lanal {POPEN}" in table and SCRIPT in table
    labels = result["actions"][1]["labels"]
    assert any(f"Lanal {POPEN}" in label for label in labels)
    assert "<script" not in result["actions"][1]["labelHtml"]
