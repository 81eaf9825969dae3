"""Shared fixtures. Each area prefixes its fixtures with its name (maps_..., ...)."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, box

from planner.network import LEG_COLUMNS, NODE_COLUMNS, Network
from planner.plan import Calendar, Plan, Route, ScenarioRef, Stop, Unserved

# ---------------------------------------------------------------- maps and reports: a tiny synthetic region

MAPS_HOSTILE_SCRIPT = "<script>alert(1)</script>"
MAPS_HOSTILE_IMG = '<img src=x onerror="document.body.dataset.pwned=1">'
MAPS_HOSTILE_TEMPLATE = "Desa `${alert(2)}` & Co"
MAPS_WITA = timezone(timedelta(hours=8))

_MAPS_NODES = [
    # node_id, kind, code, name, kabupaten, kecamatan, port_type, lon, lat
    ("wh:64.99", "warehouse", "64.99", "Gudang KPU Kabupaten Uji", "64.99", "64.99.01", "", 117.00, -0.50),
    ("ppk:64.99.01", "ppk", "64.99.01", "PPK Alpha", "64.99", "64.99.01", "", 117.10, -0.45),
    ("ppk:64.99.02", "ppk", "64.99.02", "PPK Beta", "64.99", "64.99.02", "", 117.30, -0.30),
    (
        "pps:64.99.01.2001",
        "pps",
        "64.99.01.2001",
        MAPS_HOSTILE_SCRIPT,
        "64.99",
        "64.99.01",
        "",
        117.12,
        -0.40,
    ),
    ("pps:64.99.01.2002", "pps", "64.99.01.2002", MAPS_HOSTILE_IMG, "64.99", "64.99.01", "", 117.15, -0.55),
    (
        "pps:64.99.02.2001",
        "pps",
        "64.99.02.2001",
        MAPS_HOSTILE_TEMPLATE,
        "64.99",
        "64.99.02",
        "",
        117.32,
        -0.25,
    ),
    ("pps:64.99.02.2002", "pps", "64.99.02.2002", "Pulau Miang", "64.99", "64.99.02", "", 117.70, -0.20),
    ("pps:64.99.02.2003", "pps", "64.99.02.2003", "Desa Terputus", "64.99", "64.99.02", "", 117.25, -0.10),
    ("jetty:64.99.01.2001", "port", "64.99.01.2001", "Jetty A", "64.99", "64.99.01", "river", 117.11, -0.41),
    ("jetty:64.99.01.2002", "port", "64.99.01.2002", "Jetty B", "64.99", "64.99.01", "river", 117.16, -0.53),
    (
        "port:lanal_sangatta",
        "port",
        "lanal_sangatta",
        "Pelabuhan Lanal",
        "64.99",
        "64.99.02",
        "sea",
        117.40,
        -0.28,
    ),
    (
        "seaport:64.99.02.2002",
        "port",
        "64.99.02.2002",
        "Dermaga Miang",
        "64.99",
        "64.99.02",
        "sea",
        117.69,
        -0.21,
    ),
]
_MAPS_LEGS = [
    # mode, from, to, km, direction
    ("road", "wh:64.99", "ppk:64.99.01", 15.0, ""),
    ("road", "ppk:64.99.01", "ppk:64.99.02", 30.0, ""),
    ("road", "ppk:64.99.01", "pps:64.99.01.2001", 6.0, ""),
    ("road", "ppk:64.99.02", "pps:64.99.02.2001", 6.0, ""),
    ("road", "ppk:64.99.02", "port:lanal_sangatta", 12.0, ""),
    ("road", "ppk:64.99.02", "pps:64.99.02.2003", 25.0, ""),
    ("river", "jetty:64.99.01.2001", "jetty:64.99.01.2002", 16.0, "down"),
    ("river", "jetty:64.99.01.2002", "jetty:64.99.01.2001", 16.0, "up"),
    ("access", "jetty:64.99.01.2001", "pps:64.99.01.2001", 1.2, ""),
    ("access", "jetty:64.99.01.2002", "pps:64.99.01.2002", 1.5, ""),
    ("sea", "port:lanal_sangatta", "seaport:64.99.02.2002", 35.0, ""),
    ("access", "seaport:64.99.02.2002", "pps:64.99.02.2002", 1.0, ""),
]
MAPS_BLOCKED_LEG = "road:ppk:64.99.02-pps:64.99.02.2003"
MAPS_ITEMS = [
    {"id": "kotak_suara", "name": "Kotak suara", "unit_kg": 2.26, "unit_m3": 0.012},
    {"id": "surat_suara", "name": "Surat suara", "unit_kg": 0.005, "unit_m3": 0.000008},
    {"id": "tinta", "name": "Tinta", "unit_kg": 0.1, "unit_m3": 0.00015},
    {"id": "formulir", "name": "Formulir", "unit_kg": 0.3, "unit_m3": 0.001},
]


def maps_leg_id(mode: str, a: str, b: str) -> str:
    return f"{mode}:{a}-{b}"


def _maps_build_network() -> Network:
    nodes = gpd.GeoDataFrame(
        [
            {
                "node_id": n,
                "kind": k,
                "code": c,
                "name": name,
                "kabupaten_code": kab,
                "kecamatan_code": kec,
                "host": "",
                "port_type": pt,
                "geometry": Point(lon, lat),
            }
            for n, k, c, name, kab, kec, pt, lon, lat in _MAPS_NODES
        ],
        geometry="geometry",
        crs="EPSG:4326",
    ).set_index("node_id")[[*NODE_COLUMNS, "geometry"]]
    rows = []
    for mode, a, b, km, direction in _MAPS_LEGS:
        start, end = nodes.at[a, "geometry"], nodes.at[b, "geometry"]
        middle = ((start.x + end.x) / 2 + 0.01, (start.y + end.y) / 2)  # a bend, so orientation matters
        rows.append(
            {
                "leg_id": maps_leg_id(mode, a, b),
                "mode": mode,
                "from_node": a,
                "to_node": b,
                "length_km": km,
                "status": "open",
                "rapids": False,
                "direction": direction,
                "origin": "test",
                "note": "",
                "geometry": LineString([start, middle, end]),
            }
        )
    legs = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326").set_index("leg_id")
    return Network(nodes, legs[[*LEG_COLUMNS, "geometry"]], None)


def _maps_stop(node: str, hour: float, deliver: dict | None = None, load: dict | None = None) -> Stop:
    arrival = datetime(2024, 11, 23, 6, tzinfo=MAPS_WITA) + timedelta(hours=hour)
    busy = bool(deliver or load)
    return Stop(
        node_id=node,
        arrival=arrival,
        departure=arrival + timedelta(minutes=20 if busy else 0),
        deliver=deliver or {},
        load=load or {},
    )


def _maps_build_plan(network_path: str = "networks/test/network.gpkg") -> Plan:
    r = maps_leg_id
    ppk1, ppk2, wh, port = "ppk:64.99.01", "ppk:64.99.02", "wh:64.99", "port:lanal_sangatta"
    pps1, pps2, pps3, island = (
        "pps:64.99.01.2001",
        "pps:64.99.01.2002",
        "pps:64.99.02.2001",
        "pps:64.99.02.2002",
    )
    jetty1, jetty2, seaport = "jetty:64.99.01.2001", "jetty:64.99.01.2002", "seaport:64.99.02.2002"
    truck = Route(
        vehicle_id="truck@wh:64.99#1",
        vehicle_type="truck",
        kabupaten_code="64.99",
        base=wh,
        tier=1,
        stops=[
            _maps_stop(wh, 0),
            _maps_stop(ppk1, 1, {"kotak_suara": 8, "surat_suara": 2100, "tinta": 8, "formulir": 3}),
            _maps_stop(ppk2, 2.5, {"kotak_suara": 4, "surat_suara": 900, "tinta": 4, "formulir": 2}),
            _maps_stop(port, 3.5, {"kotak_suara": 2, "surat_suara": 310, "tinta": 2}),
            _maps_stop(wh, 6),
        ],
        legs=[
            r("road", wh, ppk1),
            r("road", ppk1, ppk2),
            r("road", ppk2, port),
            r("road", ppk2, port),
            r("road", ppk1, ppk2),
            r("road", wh, ppk1),
        ],
    )
    pickup = Route(
        vehicle_id="pickup@ppk:64.99.01#1",
        vehicle_type="pickup",
        kabupaten_code="64.99",
        base=ppk1,
        tier=2,
        stops=[
            _maps_stop(ppk1, 26),
            _maps_stop(pps1, 26.5, {"kotak_suara": 4, "surat_suara": 1200, "tinta": 4}),
            _maps_stop(ppk1, 27.5),
        ],
        legs=[r("road", ppk1, pps1), r("road", ppk1, pps1)],
    )
    boat = Route(
        vehicle_id="longboat@ppk:64.99.01#1",
        vehicle_type="longboat",
        kabupaten_code="64.99",
        base=ppk1,
        tier=2,
        stops=[
            _maps_stop(ppk1, 26),
            _maps_stop(pps2, 28, {"kotak_suara": 4, "surat_suara": 900, "tinta": 4}),
            _maps_stop(ppk1, 31),
        ],
        legs=[
            r("road", ppk1, pps1),
            r("access", jetty1, pps1),
            r("river", jetty1, jetty2),
            r("access", jetty2, pps2),
            r("access", jetty2, pps2),
            r("river", jetty2, jetty1),
            r("access", jetty1, pps1),
            r("road", ppk1, pps1),
        ],
    )
    pickup2 = Route(
        vehicle_id="pickup@ppk:64.99.02#1",
        vehicle_type="pickup",
        kabupaten_code="64.99",
        base=ppk2,
        tier=2,
        trip=1,
        stops=[
            _maps_stop(ppk2, 26),
            _maps_stop(pps3, 26.4, {"kotak_suara": 2, "surat_suara": 590, "tinta": 2}),
            _maps_stop(ppk2, 27),
        ],
        legs=[r("road", ppk2, pps3), r("road", ppk2, pps3)],
    )
    ship = Route(
        vehicle_id="navy@port:lanal_sangatta#1",
        vehicle_type="navy_vessel",
        kabupaten_code="64.99",
        base=port,
        tier=2,
        stops=[
            _maps_stop(port, 24, load={"kotak_suara": 2, "surat_suara": 310, "tinta": 2}),
            _maps_stop(island, 27, {"kotak_suara": 2, "surat_suara": 310, "tinta": 2}),
            _maps_stop(port, 30),
        ],
        legs=[
            r("sea", port, seaport),
            r("access", seaport, island),
            r("access", seaport, island),
            r("sea", port, seaport),
        ],
    )
    return Plan(
        scenario=ScenarioRef(name="uji-<b>synthetic</b>", hash="sha256:0"),
        network=network_path,
        calendar=Calendar(
            start=datetime(2024, 11, 23, 6, tzinfo=MAPS_WITA),
            ppk_deadline=datetime(2024, 11, 24, 18, tzinfo=MAPS_WITA),
            pps_deadline=datetime(2024, 11, 25, 18, tzinfo=MAPS_WITA),
        ),
        blocked_legs=[MAPS_BLOCKED_LEG],
        routes=[truck, pickup, boat, pickup2, ship],
        unserved=[
            Unserved(
                node_id="pps:64.99.02.2003",
                kabupaten_code="64.99",
                reason="unreachable",
                detail=f"its only road {MAPS_BLOCKED_LEG} is blocked",
            )
        ],
    )


@pytest.fixture
def maps_network() -> Network:
    """A tiny region with every node kind and leg mode; desa names that try to inject HTML and JS."""
    return _maps_build_network()


@pytest.fixture
def maps_plan() -> Plan:
    """A hand-made plan on `maps_network`: a truck, two pickups, a longboat, a navy ship, one unserved desa."""
    return _maps_build_plan()


@pytest.fixture
def maps_items() -> list[dict]:
    return [dict(item) for item in MAPS_ITEMS]


@pytest.fixture
def maps_node_info() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "node_id": [
                "pps:64.99.01.2001",
                "pps:64.99.01.2002",
                "pps:64.99.02.2001",
                "pps:64.99.02.2002",
                "pps:64.99.02.2003",
                "ppk:64.99.01",
                "ppk:64.99.02",
            ],
            "tps": [2, 2, 1, 1, 1, 4, 3],
            "dpt": [1170, 880, 575, 302, 410, 2050, 1287],
        }
    )


@pytest.fixture
def maps_boundaries():
    from planner.maps import Boundaries

    kabupaten = gpd.GeoDataFrame(
        {"code": ["64.99"], "name": ["Kabupaten <i>Uji</i>"]},
        geometry=[box(116.9, -0.7, 117.8, 0.0)],
        crs=4326,
    )
    kecamatan = gpd.GeoDataFrame(
        {"code": ["64.99.01", "64.99.02"], "name": ["Alpha", "Beta"]},
        geometry=[box(116.9, -0.7, 117.2, 0.0), box(117.2, -0.7, 117.8, 0.0)],
        crs=4326,
    )
    return Boundaries(kabupaten, kecamatan)


def _maps_kaltim_plan(network: Network, kabupaten: str | None = None) -> Plan:
    """A plan on a real network: each warehouse truck visits its PPK, each PPK serves its PPS (not optimised)."""
    from planner.paths import ALL_MODES_SPEEDS, shortest_paths

    nodes = network.nodes
    ppk = nodes[nodes["kind"] == "ppk"]
    pps = nodes[nodes["kind"] == "pps"]
    if kabupaten is not None:
        ppk = ppk[ppk["kabupaten_code"] == kabupaten]
    warehouses = [w for w in nodes.index[nodes["kind"] == "warehouse"] if w != "wh:64"]
    warehouses = [w for w in warehouses if kabupaten is None or w == f"wh:{kabupaten}"]
    paths = shortest_paths(network, ALL_MODES_SPEEDS)
    start = Calendar(
        start="2024-11-23T06:00:00+08:00",
        ppk_deadline="2024-11-24T18:00:00+08:00",
        pps_deadline="2024-11-25T18:00:00+08:00",
    )
    routes = []

    def route(vehicle: str, kind: str, kab: str, base: str, tier: int, visits: list[str]) -> Route:
        legs, stops, here, clock = [], [], base, start.start
        for target in [*visits, base]:
            try:
                legs += paths.path_legs(here, target) if target != here else []
            except ValueError:
                continue
            clock += timedelta(minutes=45)
            deliver = {} if target == base else {"kotak_suara": 4, "surat_suara": 1200}
            stops.append(Stop(node_id=target, arrival=clock, departure=clock, deliver=deliver))
            here = target
        stops.insert(0, Stop(node_id=base, arrival=start.start, departure=start.start))
        return Route(
            vehicle_id=vehicle,
            vehicle_type=kind,
            kabupaten_code=kab,
            base=base,
            tier=tier,
            stops=stops,
            legs=legs,
        )

    for wh in warehouses:
        kab = wh.split(":", 1)[1]
        targets = sorted(ppk.index[ppk["kabupaten_code"] == kab])
        routes.append(route(f"truck@{wh}#1", "truck", kab, wh, 1, targets))
    for node_id, row in ppk.iterrows():
        targets = sorted(pps.index[pps["kecamatan_code"] == row["kecamatan_code"]])
        routes.append(route(f"pickup@{node_id}#1", "pickup", row["kabupaten_code"], node_id, 2, targets))
    return Plan(
        scenario=ScenarioRef(name="kaltim-size-check", hash="sha256:0"),
        network=str(network.source),
        calendar=start,
        routes=routes,
    )


@pytest.fixture
def maps_kaltim_plan():
    """Builds a plan on a real network (optionally one kabupaten) for size and integration checks."""
    return _maps_kaltim_plan


# ---------------------------------------------------------------- browser tests


def pytest_terminal_summary(terminalreporter) -> None:
    """Say plainly when the headless-browser map tests or the PDF page renders could not run."""
    missing = []
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        missing.append(
            "chromium not installed: the browser map tests (tests/test_map_browser.py) were skipped"
        )
    if shutil.which("pdftoppm") is None:
        missing.append(
            "pdftoppm not installed: the PDF page render test (tests/test_documents.py) was skipped"
        )
    for note in missing:
        terminalreporter.write_line(
            f"NOTE: {note}. Install chromium and poppler-utils with apt-get (.ci/run does).",
            yellow=True,
            bold=True,
        )


# ---------------------------------------------------------------- solve: real scenarios in deterministic mode

SOLVE_ROOT = Path(__file__).resolve().parents[1]
SOLVE_TIME_LIMIT = 4.0


def _solve_deterministic(scenario: Path, time_limit: float = SOLVE_TIME_LIMIT):
    from planner.pipeline import load_problem, make_plan, search_settings

    problem = load_problem(scenario)
    plan = make_plan(problem, search_settings(problem, time_limit, deterministic=True))
    return plan, problem.expect


@pytest.fixture(scope="session")
def solve_scenario():
    """A function: scenario path -> (plan, expectations), solved in deterministic mode."""
    return _solve_deterministic


@pytest.fixture(scope="session")
def solve_mahulu():
    """Mahakam Ulu (trucks, speedboats and longboats over the riam) solved once per test session."""
    return _solve_deterministic(SOLVE_ROOT / "scenarios" / "mahulu-river.yaml")
