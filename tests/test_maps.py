"""The route map: content per audience, escaping, offline assets, size on the whole of Kaltim, `planner map`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import build_app
from planner.errors import InputError
from planner.maps import (
    build_map_content,
    load_boundaries,
    render_map_html,
    write_map,
)
from planner.network import load_network, write_network
from planner.plan import Plan, write_plan

ROOT = Path(__file__).resolve().parent.parent
KALTIM = ROOT / "networks" / "kaltim"
MAX_MAP_BYTES = 10_000_000


def _layer(content, label):
    return next(layer for layer in content.layers if layer.label == label)


def _labels(content) -> list[str]:
    return [layer.label for layer in content.layers]


def _popup(layer, feature_id) -> dict[str, str]:
    feature = next(f for f in layer.features if f["properties"].get("id") == feature_id)
    return {k: v for k, v in feature["properties"]["r"]} | {"title": feature["properties"]["t"]}


def test_kpu_map_has_every_layer(maps_plan, maps_network, maps_node_info, maps_items, maps_boundaries):
    content = build_map_content(
        maps_plan, maps_network, maps_node_info, "kpu", items=maps_items, boundaries=maps_boundaries
    )
    labels = _labels(content)
    for expected in [
        "Kabupaten boundaries",
        "Kecamatan boundaries",
        "Road legs",
        "River legs",
        "Sea legs",
        "Access links",
        "Blocked legs",
        "Ports and jetties",
        "PPS (desa)",
        "PPK (kecamatan)",
        "Warehouses (gudang KPU)",
        "Unserved stops",
    ]:
        assert expected in labels
    for route in maps_plan.routes:
        assert any(label.startswith(route.vehicle_id) for label in labels)
    # the blocked leg is drawn once, in the blocked layer
    blocked_ids = [f["properties"]["t"] for f in _layer(content, "Blocked legs").features]
    road_ids = [f["properties"]["t"] for f in _layer(content, "Road legs").features]
    assert maps_plan.blocked_legs == blocked_ids and maps_plan.blocked_legs[0] not in road_ids
    assert not _layer(content, "Access links").show
    unserved = _popup(_layer(content, "Unserved stops"), "pps:64.99.02.2003")
    assert unserved["Unserved"].startswith("unreachable")


def test_popup_has_name_code_tps_dpt_arrival_and_items(maps_plan, maps_network, maps_node_info, maps_items):
    content = build_map_content(maps_plan, maps_network, maps_node_info, "kpu", items=maps_items)
    popup = _popup(_layer(content, "PPS (desa)"), "pps:64.99.01.2001")
    assert popup["title"] == "<script>alert(1)</script>"  # raw in the data; the page shows it as text
    assert popup["Code"] == "64.99.01.2001"
    assert popup["TPS"] == "2" and popup["DPT"] == "1,170"
    stop = maps_plan.routes[1].stops[1]
    assert popup["Arrival"].startswith(stop.arrival.strftime("%a %d %b %H:%M"))
    assert popup["Delivered: Surat suara"] == f"{stop.deliver['surat_suara']:,}"


def test_popups_without_node_info_have_no_tps(maps_plan, maps_network):
    content = build_map_content(maps_plan, maps_network, None, "kpu")
    popup = _popup(_layer(content, "PPS (desa)"), "pps:64.99.01.2001")
    assert "TPS" not in popup and "DPT" not in popup
    assert "Delivered: surat_suara" in popup  # without a catalog the item id stands in for its name


def test_lanal_map_shows_only_the_sea(maps_plan, maps_network, maps_node_info, maps_items, maps_boundaries):
    content = build_map_content(
        maps_plan, maps_network, maps_node_info, "lanal", items=maps_items, boundaries=maps_boundaries
    )
    labels = _labels(content)
    assert "Road legs" not in labels and "River legs" not in labels and "Kecamatan boundaries" not in labels
    assert not any(label.startswith(("truck", "pickup", "longboat")) for label in labels)
    assert any(label.startswith("navy@port:lanal_sangatta#1") for label in labels)
    leg_modes = {
        maps_network.legs.at[f["properties"]["t"], "mode"]
        for layer in content.layers
        if layer.kind == "line"
        for f in layer.features
    }
    assert leg_modes == {"sea"}
    points = {
        f["properties"]["id"] for layer in content.layers if layer.kind == "point" for f in layer.features
    }
    assert points == {"port:lanal_sangatta", "seaport:64.99.02.2002", "pps:64.99.02.2002"}
    island = _popup(_layer(content, "Coastal and island stops served by ships"), "pps:64.99.02.2002")
    assert island["Delivered: Surat suara"] == "310"
    assert "navy@port:lanal_sangatta#1" in island["Arrival"]


def test_routes_point_in_the_direction_of_travel(maps_plan, maps_network):
    content = build_map_content(maps_plan, maps_network, None, "kpu")
    for route in maps_plan.routes:
        layer = next(layer for layer in content.layers if layer.label.startswith(route.vehicle_id))
        parts = layer.features[0]["geometry"]["coordinates"]
        assert len(parts) == len(route.legs)
        base = maps_network.nodes.at[route.base, "geometry"]
        assert parts[0][0] == pytest.approx([base.x, base.y])
        assert parts[-1][-1] == pytest.approx([base.x, base.y])
        for previous, current in zip(parts, parts[1:], strict=False):
            assert current[0] == pytest.approx(previous[-1])  # each leg starts where the last one ended


def test_html_is_offline_and_escaped(maps_plan, maps_network, maps_node_info, maps_items, maps_boundaries):
    page = render_map_html(
        build_map_content(
            maps_plan, maps_network, maps_node_info, "kpu", items=maps_items, boundaries=maps_boundaries
        )
    )
    tags = re.findall(r"<(?:script|link)\b[^>]*>", page, flags=re.IGNORECASE)
    assert all("src=" not in t and "href=" not in t for t in tags), tags  # nothing is fetched
    assert not re.search(r"<(?:img|iframe|embed|object)\b", page, flags=re.IGNORECASE)
    assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//", page)
    assert 'L.version="1.9.4"' in page.replace(" ", "") or "1.9.4" in page
    for raw in (
        "<script>alert(1)</script>",
        '<img src=x onerror="document.body.dataset.pwned=1">',
        "<b>synthetic</b>",
        "<i>Uji</i>",
    ):
        assert raw not in page
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in page
    assert "uji-&lt;b&gt;synthetic&lt;/b&gt;" in page  # the page title
    assert page.count("<script") == page.count("</script>")


def test_map_is_deterministic(tmp_path, maps_plan, maps_network, maps_node_info, maps_items):
    a = write_map(maps_plan, maps_network, maps_node_info, "kpu", tmp_path / "a.html", items=maps_items)
    b = write_map(maps_plan, maps_network, maps_node_info, "kpu", tmp_path / "b.html", items=maps_items)
    assert a.read_bytes() == b.read_bytes()


def test_unknown_audience_and_foreign_plan_are_input_errors(maps_plan, maps_network):
    with pytest.raises(InputError, match="audience"):
        build_map_content(maps_plan, maps_network, None, "press")
    foreign = maps_plan.model_copy(deep=True)
    foreign.routes[0].stops[1].node_id = "pps:99.99.99.9999"
    with pytest.raises(InputError, match="pps:99.99.99.9999"):
        build_map_content(foreign, maps_network, None, "kpu")


def test_map_command(tmp_path, maps_plan, maps_network):
    network_path = write_network(maps_network, tmp_path / "net" / "network.gpkg")
    plan_path = write_plan(
        maps_plan.model_copy(update={"network": str(network_path)}), tmp_path / "plan.json"
    )
    out = tmp_path / "share" / "lanal.html"
    result = CliRunner().invoke(
        build_app(), ["map", str(plan_path), "--audience", "lanal", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.is_file() and "Lanal (sea) route map" in out.read_text(encoding="utf-8")
    result = CliRunner().invoke(build_app(), ["map", str(plan_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "map-kpu.html").is_file()
    result = CliRunner().invoke(build_app(), ["map", str(plan_path), "--audience", "press"])
    assert result.exit_code == 2


# ---------------------------------------------------------------- the whole of Kalimantan Timur


@pytest.mark.skipif(not (KALTIM / "network.gpkg").is_file(), reason="networks/kaltim/network.gpkg not built")
def test_whole_kaltim_map_stays_under_10_mb(tmp_path, maps_kaltim_plan):
    network = load_network(KALTIM)
    plan = maps_kaltim_plan(network)
    boundaries = load_boundaries(KALTIM)
    assert boundaries is not None and boundaries.kecamatan is not None
    kpu = write_map(plan, network, None, "kpu", tmp_path / "kpu.html", boundaries=boundaries)
    lanal = write_map(plan, network, None, "lanal", tmp_path / "lanal.html", boundaries=boundaries)
    assert kpu.stat().st_size <= MAX_MAP_BYTES, kpu.stat().st_size
    assert lanal.stat().st_size < kpu.stat().st_size
    text = kpu.read_text(encoding="utf-8")
    assert text.count('"id":"pps:') == int((network.nodes["kind"] == "pps").sum())


def _with_hostile_vehicle(plan: Plan) -> Plan:
    hostile = plan.model_copy(deep=True)
    hostile.routes[0].vehicle_id = '<img src=x onerror="document.body.dataset.pwned=1">'
    hostile.routes[0].vehicle_type = "<b>truck</b>"
    return hostile


def test_vehicle_ids_in_layer_names_are_escaped(maps_plan, maps_network):
    page = render_map_html(build_map_content(_with_hostile_vehicle(maps_plan), maps_network, None, "kpu"))
    assert "<img" not in page and "<b>truck</b>" not in page
    # layer names reach Leaflet (which inserts them as HTML) already escaped, inside JSON-escaped text
    assert "\\u0026lt;img src=x onerror=" in page


@pytest.mark.skipif(not (KALTIM / "network.gpkg").is_file(), reason="networks/kaltim/network.gpkg not built")
def test_a_kabupaten_plan_maps_its_kabupaten(maps_kaltim_plan):
    network = load_network(KALTIM)
    plan = maps_kaltim_plan(network, kabupaten="64.11")
    content = build_map_content(plan, network, None, "kpu")
    points = {
        f["properties"]["id"] for layer in content.layers if layer.kind == "point" for f in layer.features
    }
    mahulu_pps = set(
        network.nodes.index[(network.nodes["kind"] == "pps") & (network.nodes["kabupaten_code"] == "64.11")]
    )
    assert mahulu_pps <= points
    assert not any(p.startswith("pps:") and not p.startswith("pps:64.11.") for p in points)
    min_lon, min_lat, max_lon, max_lat = content.bounds
    assert max_lon < 116.5 and min_lon > 113.5  # Mahakam Ulu lies in the far west of Kaltim
