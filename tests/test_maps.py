"""The route map: content per audience, escaping, offline assets, size on the whole of Kaltim, `planner map`."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from planner.cli import build_app, main
from planner.errors import InputError
from planner.maps import (
    FADED_ROUTE_STYLE,
    FAMILY_SHADES,
    LABEL_ZOOM,
    ROUTE_STYLE,
    build_map_content,
    load_boundaries,
    render_map_html,
    vehicle_colours,
    vehicle_family,
    write_kabupaten_maps,
    write_map,
)
from planner.network import load_network, write_network
from planner.plan import write_plan

ROOT = Path(__file__).resolve().parent.parent
KALTIM = ROOT / "networks" / "kaltim"
MAX_MAP_BYTES = 10_000_000


def _layer(content, label):
    return next(layer for layer in content.layers if layer.label == label)


def _labels(content) -> list[str]:
    return [layer.label for layer in content.layers]


def _feature(content, feature_id) -> dict:
    return next(
        f for layer in content.layers for f in layer.features if f["properties"].get("id") == feature_id
    )


def _popup(layer, feature_id) -> dict[str, str]:
    feature = next(f for f in layer.features if f["properties"].get("id") == feature_id)
    return {k: v for k, v in feature["properties"]["r"]} | {"title": feature["properties"]["t"]}


def _details(layer, feature_id) -> dict[str, str]:
    feature = next(f for f in layer.features if f["properties"].get("id") == feature_id)
    return {k: v for k, v in feature["properties"].get("d", [])}


def test_kpu_map_has_every_layer_in_indonesian(
    maps_plan, maps_network, maps_node_info, maps_items, maps_boundaries
):
    content = build_map_content(
        maps_plan, maps_network, maps_node_info, "kpu", items=maps_items, boundaries=maps_boundaries
    )
    labels = _labels(content)
    for expected in [
        "Batas kabupaten",
        "Batas kecamatan",
        "Jalan",
        "Sungai",
        "Laut",
        "Akses dermaga",
        "Ruas tertutup",
        "Pelabuhan dan dermaga",
        "PPS (desa)",
        "PPK (kecamatan)",
        "Gudang KPU",
        "Titik tidak terlayani",
        "Truk",
        "Pikap",
        "Longboat (perahu panjang)",
        "Kapal",
    ]:
        assert expected in labels
    route_ids = {
        f["properties"]["id"] for layer in content.layers if layer.kind == "route" for f in layer.features
    }
    assert route_ids == {f"trip:{r.vehicle_id}#{r.trip}" for r in maps_plan.routes}
    # the blocked leg is drawn once, in the blocked layer
    blocked_ids = [f["properties"]["t"] for f in _layer(content, "Ruas tertutup").features]
    road_ids = [f["properties"]["t"] for f in _layer(content, "Jalan").features]
    assert maps_plan.blocked_legs == blocked_ids and maps_plan.blocked_legs[0] not in road_ids
    assert not _layer(content, "Akses dermaga").show
    unserved = _popup(_layer(content, "Titik tidak terlayani"), "pps:64.99.02.2003")
    assert unserved["Tidak terlayani"].startswith("unreachable")
    assert content.title == "uji-<b>synthetic</b>: peta rute KPU"
    assert "Sab 23 Nov, 06.00 WITA" in content.subtitle


def test_english_on_request(maps_plan, maps_network, maps_node_info, maps_items):
    content = build_map_content(maps_plan, maps_network, maps_node_info, "kpu", items=maps_items, lang="en")
    assert {"Road legs", "Blocked legs", "Trucks", "Warehouses (gudang KPU)"} <= set(_labels(content))
    assert "Sat 23 Nov, 06:00 WITA" in content.subtitle
    with pytest.raises(InputError, match="language"):
        build_map_content(maps_plan, maps_network, None, "kpu", lang="fr")


def test_routes_are_coloured_by_vehicle_type(maps_plan, maps_network):
    plan = maps_plan.model_copy(deep=True)
    extra = plan.routes[1].model_copy(update={"vehicle_id": "pickup@ppk:64.99.01#2"})
    plan.routes.append(extra)
    colours = vehicle_colours(plan.routes)
    content = build_map_content(plan, maps_network, None, "kpu")
    for family, label in (("truck", "Truk"), ("pickup", "Pikap"), ("longboat", "Longboat (perahu panjang)")):
        for feature in _layer(content, label).features:
            assert feature["properties"]["s"]["color"] in FAMILY_SHADES[family]
    assert {vehicle_family(r.vehicle_type) for r in plan.routes} == {"truck", "pickup", "longboat", "ship"}
    assert colours["pickup@ppk:64.99.01#1"] != colours["pickup@ppk:64.99.01#2"]  # two shades of one hue
    assert vehicle_family("kapal_motor") == vehicle_family("navy_vessel") == "ship"


def test_one_kabupaten_is_highlighted(maps_plan, maps_network):
    plan = maps_plan.model_copy(deep=True)
    plan.routes[3].kabupaten_code = "64.98"  # a second kabupaten, to be faded
    content = build_map_content(plan, maps_network, None, "kpu", highlight="64.99")
    lit = _layer(content, "Rute Kabupaten 64.99")
    assert {f["properties"]["id"] for f in lit.features} == {
        f"trip:{r.vehicle_id}#{r.trip}" for r in plan.routes if r.kabupaten_code == "64.99"
    }
    faded = _feature(content, f"trip:{plan.routes[3].vehicle_id}#1")
    assert faded["properties"]["s"]["color"] == FADED_ROUTE_STYLE["color"]
    assert all(f["properties"]["s"]["weight"] > ROUTE_STYLE["weight"] for f in lit.features)
    with pytest.raises(InputError, match="64.50"):
        build_map_content(plan, maps_network, None, "kpu", highlight="64.50")


def test_places_are_labelled_from_a_readable_zoom(maps_plan, maps_network):
    content = build_map_content(maps_plan, maps_network, None, "kpu")
    assert _feature(content, "wh:64.99")["properties"]["lz"] == LABEL_ZOOM["warehouse"]
    assert _feature(content, "ppk:64.99.01")["properties"]["lz"] == LABEL_ZOOM["ppk"]
    assert _feature(content, "port:lanal_sangatta")["properties"]["lz"] == LABEL_ZOOM["sea_port"]
    assert "lz" not in _feature(content, "pps:64.99.01.2001")["properties"]


def test_popup_is_short_with_the_items_folded(maps_plan, maps_network, maps_node_info, maps_items):
    content = build_map_content(maps_plan, maps_network, maps_node_info, "kpu", items=maps_items)
    layer = _layer(content, "PPS (desa)")
    popup = _popup(layer, "pps:64.99.01.2001")
    assert popup["title"] == "<script>alert(1)</script>"  # raw in the data; the page shows it as text
    assert popup["Kode"] == "64.99.01.2001" and popup["TPS"] == "2"
    stop = maps_plan.routes[1].stops[1]
    assert popup["Tiba"] == f"Min 24 Nov, 08.30 WITA ({maps_plan.routes[1].vehicle_id})"  # hour 26.5
    kg = sum(stop.deliver[i["id"]] * i["unit_kg"] for i in maps_items if i["id"] in stop.deliver)
    packages = sum(stop.deliver.values())  # the test catalog has no per-voter rule: every unit counts
    assert popup["Diterima"] == f"{packages:,} koli, {round(kg)} kg".replace(",", ".", 1)  # 1.208 koli, 15 kg
    assert len(popup) <= 7  # title, code, kind, TPS, arrival, delivered
    details = _details(layer, "pps:64.99.01.2001")
    assert details["DPT"] == "1.170" and details["Surat suara"] == "1.200"


def test_ballot_sheets_are_not_counted_as_packages(maps_plan, maps_network, maps_items):
    items = [dict(i, rule="per_voter_reserve" if i["id"] == "surat_suara" else "per_tps") for i in maps_items]
    content = build_map_content(maps_plan, maps_network, None, "kpu", items=items)
    popup = _popup(_layer(content, "PPS (desa)"), "pps:64.99.01.2001")
    assert popup["Diterima"].startswith("8 koli")  # 4 kotak suara + 4 tinta; 1,200 ballots go by weight


def test_popups_without_node_info_have_no_tps(maps_plan, maps_network):
    content = build_map_content(maps_plan, maps_network, None, "kpu")
    layer = _layer(content, "PPS (desa)")
    assert "TPS" not in _popup(layer, "pps:64.99.01.2001")
    details = _details(layer, "pps:64.99.01.2001")
    assert "DPT" not in details and "surat_suara" in details  # without a catalog the item id stands in


def test_lanal_map_shows_only_the_sea_and_a_trip_table(
    maps_plan, maps_network, maps_node_info, maps_items, maps_boundaries
):
    content = build_map_content(
        maps_plan, maps_network, maps_node_info, "lanal", items=maps_items, boundaries=maps_boundaries
    )
    labels = _labels(content)
    assert "Jalan" not in labels and "Sungai" not in labels and "Batas kecamatan" not in labels
    assert "Truk" not in labels and "Pikap" not in labels and "Kapal" in labels
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
    island = _popup(_layer(content, "Desa pesisir dan pulau yang dilayani kapal"), "pps:64.99.02.2002")
    assert "navy@port:lanal_sangatta#1" in island["Tiba"]
    assert (
        _details(_layer(content, "Desa pesisir dan pulau yang dilayani kapal"), "pps:64.99.02.2002")[
            "Surat suara"
        ]
        == "310"
    )
    ship = maps_plan.routes[4]
    rows = content.extra["table"]["rows"]
    assert [row["id"] for row in rows] == [f"trip:{ship.vehicle_id}#{ship.trip}"]
    vessel, departure, stops, cargo, back = rows[0]["cells"]
    assert vessel[0] == ship.vehicle_id and vessel[1] == "Kapal (navy_vessel)"
    assert departure == ["Pelabuhan Lanal", "Min 24 Nov, 06.20 WITA"]
    kg = 2 * 2.26 + 310 * 0.005 + 2 * 0.1
    assert stops == [
        f"Pulau Miang: tiba Min 24 Nov, 09.00 WITA, berangkat 09.20 WITA; 314 koli, {round(kg)} kg"
    ]
    assert cargo == [f"314 koli, {round(kg)} kg"]
    assert back == ["Pelabuhan Lanal", "Min 24 Nov, 12.00 WITA"]


def test_every_sea_trip_is_a_table_row(maps_plan, maps_network):
    plan = maps_plan.model_copy(deep=True)
    second = plan.routes[4].model_copy(deep=True, update={"trip": 2})
    for stop in second.stops:
        stop.arrival += timedelta(hours=8)
        stop.departure += timedelta(hours=8)
    plan.routes.append(second)
    content = build_map_content(plan, maps_network, None, "lanal")
    sea_trips = [r for r in plan.routes if any(leg.startswith("sea:") for leg in r.legs)]
    assert len(content.extra["table"]["rows"]) == len(sea_trips) == 2


def test_the_time_control_follows_each_vehicle(maps_plan, maps_network):
    content = build_map_content(maps_plan, maps_network, None, "kpu")
    time = content.extra["time"]
    assert time["days"] == ["Sabtu, 23 November 2024", "Minggu, 24 November 2024", "Senin, 25 November 2024"]
    assert time["length"] == 3 * 24 * 60
    tracks = {t["v"]: t["p"] for t in time["tracks"]}
    assert set(tracks) == {r.vehicle_id for r in maps_plan.routes}
    midnight = maps_plan.calendar.start.replace(hour=0)
    truck = maps_plan.routes[0]
    points = tracks[truck.vehicle_id]
    assert [p[0] for p in points] == sorted(p[0] for p in points)
    nodes = maps_network.nodes
    for stop in truck.stops:  # at each stop from arrival to departure
        minute = (stop.arrival - midnight).total_seconds() / 60
        here = nodes.at[stop.node_id, "geometry"]
        assert [minute, round(here.x, 4), round(here.y, 4)] in points
    # half-way between two stops it is on the road, not at either end
    leave, arrive = truck.stops[0].departure, truck.stops[1].arrival
    middle = ((leave - midnight) + (arrive - leave) / 2).total_seconds() / 60
    between = [
        p
        for p in points
        if (leave - midnight).total_seconds() / 60 < p[0] < (arrive - midnight).total_seconds() / 60
    ]
    assert between and all(p[1:] != [117.0, -0.5] for p in between)
    assert min(abs(p[0] - middle) for p in between) < 30


def test_routes_point_in_the_direction_of_travel(maps_plan, maps_network):
    content = build_map_content(maps_plan, maps_network, None, "kpu")
    for route in maps_plan.routes:
        parts = _feature(content, f"trip:{route.vehicle_id}#{route.trip}")["geometry"]["coordinates"]
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


def test_map_command(tmp_path, capsys, maps_plan, maps_network):
    network_path = write_network(maps_network, tmp_path / "net" / "network.gpkg")
    plan_path = write_plan(
        maps_plan.model_copy(update={"network": str(network_path)}), tmp_path / "plan.json"
    )
    out = tmp_path / "share" / "lanal.html"
    app = build_app()
    result = CliRunner().invoke(app, ["map", str(plan_path), "--audience", "lanal", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "peta pelayaran untuk Lanal" in out.read_text(encoding="utf-8")
    assert not (tmp_path / "share" / "maps").exists()  # kabupaten maps are KPU maps
    result = CliRunner().invoke(app, ["map", str(plan_path), "--lang", "en", "--kabupaten", "64.99"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "map-kpu.html").read_text(encoding="utf-8")
    assert "KPU route map" in page and "Routes of kabupaten 64.99" in page
    assert (tmp_path / "maps" / "map-64.99.html").is_file()
    for bad, named in ((["--lang", "fr"], "fr"), (["--kabupaten", "64.50"], "64.50")):
        with pytest.raises(SystemExit) as exit_info:
            main(["map", str(plan_path), *bad])
        assert exit_info.value.code == 2
        assert named in capsys.readouterr().err
    result = CliRunner().invoke(app, ["map", str(plan_path), "--audience", "press"])
    assert result.exit_code == 2


def test_kabupaten_maps_hold_one_kabupaten_each(tmp_path, maps_plan, maps_network, maps_boundaries):
    plan = maps_plan.model_copy(deep=True)
    plan.routes[3].kabupaten_code = "64.98"
    (tmp_path / "map-64.50.html").write_text("from an older plan", encoding="utf-8")
    written = write_kabupaten_maps(plan, maps_network, None, tmp_path, boundaries=maps_boundaries)
    assert [p.name for p in written] == ["map-64.98.html", "map-64.99.html"]
    assert not (tmp_path / "map-64.50.html").exists()
    small = written[0].read_text(encoding="utf-8")
    assert plan.routes[3].vehicle_id in small and plan.routes[0].vehicle_id not in small


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
    kabupaten = write_kabupaten_maps(plan, network, None, tmp_path / "maps", boundaries=boundaries)
    assert len(kabupaten) == 10  # the ten kabupaten and kota of Kaltim
    assert all(p.stat().st_size < kpu.stat().st_size / 2 for p in kabupaten)


def test_hostile_vehicle_ids_never_reach_the_page_as_html(maps_plan, maps_network):
    hostile = maps_plan.model_copy(deep=True)
    hostile.routes[0].vehicle_id = '<img src=x onerror="document.body.dataset.pwned=1">'
    hostile.routes[0].vehicle_type = "<b>truck</b>"
    page = render_map_html(build_map_content(hostile, maps_network, None, "kpu", highlight="64.99"))
    assert "<img" not in page and "<b>truck</b>" not in page
    assert "\\u003cimg src=x onerror=" in page  # JSON text, shown by the page with textContent


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
    # a desa of another kabupaten is drawn only where a route drives through it (Long Merah's road runs
    # through Tabang, Kutai Kartanegara)
    legs = network.legs
    on_routes = {n for r in plan.routes for leg in r.legs for n in legs.loc[leg, ["from_node", "to_node"]]}
    assert all(p in on_routes for p in points if p.startswith("pps:") and not p.startswith("pps:64.11."))
    min_lon, min_lat, max_lon, max_lat = content.bounds
    assert max_lon < 116.5 and min_lon > 113.5  # Mahakam Ulu lies in the far west of Kaltim


# ---------------------------------------------------------------- the real ground (issue 11): road classes, crossings, lakes


def _rebuilt_network(network):
    """The fixture network as the rebuilt network will be: a road_class and a crossing column, a ferry leg."""
    from dataclasses import replace

    import geopandas as gpd
    from shapely.geometry import LineString

    legs = network.legs.copy()
    legs["road_class"] = [
        "trunk" if leg.startswith("road:wh:") else "local" if leg.startswith("road:") else ""
        for leg in legs.index
    ]
    legs["crossing"] = ""
    legs.loc["road:ppk:64.99.01-ppk:64.99.02", "crossing"] = "Jembatan <Uji>"
    ferry = legs.loc[["road:ppk:64.99.02-port:lanal_sangatta"]].copy()
    ferry.index = ["ferry:ppk:64.99.02-port:lanal_sangatta"]
    ferry["mode"] = "ferry"
    ferry["road_class"] = ""
    ferry["crossing"] = "Penyeberangan Uji"
    ferry["geometry"] = [LineString([(117.3, -0.3), (117.35, -0.32), (117.4, -0.28)])]
    legs = gpd.GeoDataFrame(pd.concat([legs, ferry]), geometry="geometry", crs=legs.crs)
    return replace(network, legs=legs)


def test_trunk_and_assumed_local_roads_bridges_ferries_and_lakes(maps_plan, maps_network, maps_boundaries):
    import geopandas as gpd
    from shapely.geometry import box

    network = _rebuilt_network(maps_network)
    lakes = gpd.GeoDataFrame(
        {"code": ["danau:1"], "name": ["Danau Semayang"]}, geometry=[box(117.2, -0.2, 117.3, -0.1)], crs=4326
    )
    boundaries = maps_boundaries.__class__(maps_boundaries.kabupaten, maps_boundaries.kecamatan, lakes)
    content = build_map_content(maps_plan, network, None, "kpu", boundaries=boundaries)
    labels = _labels(content)
    for expected in ("Jalan utama", "Jalan lokal (diasumsikan)", "Jembatan", "Penyeberangan (feri)", "Danau"):
        assert expected in labels
    assert "Jalan" not in labels  # every road leg has a class now
    trunk = [f["properties"]["t"] for f in _layer(content, "Jalan utama").features]
    assert trunk == ["road:wh:64.99-ppk:64.99.01"]
    local = _layer(content, "Jalan lokal (diasumsikan)")
    assert local.style["opacity"] < _layer(content, "Jalan utama").style["opacity"] and local.dashed
    popup = _popup(local, local.features[0]["properties"]["id"])
    assert popup["Kelas jalan"] == "jalan lokal (diasumsikan)"
    bridge = _popup(_layer(content, "Jembatan"), "road:ppk:64.99.01-ppk:64.99.02")
    assert bridge["Penyeberangan"] == "Jembatan <Uji>"
    ferry = _popup(_layer(content, "Penyeberangan (feri)"), "ferry:ppk:64.99.02-port:lanal_sangatta")
    assert ferry["Moda"] == "kapal penyeberangan"
    lake_layer = _layer(content, "Danau")
    assert lake_layer.interactive and lake_layer.features[0]["properties"]["t"] == "Danau Semayang"
    legend = [label for _, label, _ in content.legend]
    assert "Jalan lokal (diasumsikan)" in legend and "Danau" in legend
    # the same map on today's network: one road layer, no lakes, no bridges
    today = _labels(build_map_content(maps_plan, maps_network, None, "kpu", boundaries=maps_boundaries))
    assert "Jalan" in today and not {"Jalan utama", "Jembatan", "Danau"} & set(today)
