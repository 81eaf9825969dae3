"""Fleet files: the default Kaltim fleet, its expansion onto the network, and bad fleets."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.errors import InputError
from planner.fleet import check_fleet, expand_fleet, load_fleet, load_fleet_spec
from planner.network import load_network
from planner.paths import leg_hours, shortest_paths

ROOT = Path(__file__).resolve().parents[1]
FLEET = ROOT / "scenarios" / "common" / "fleet-kaltim.yaml"
NETWORK = ROOT / "networks" / "kaltim"


@pytest.fixture(scope="module")
def network():
    return load_network(NETWORK)


@pytest.fixture(scope="module")
def fleet(network):
    return load_fleet(FLEET, network)


def test_default_fleet_has_the_required_vehicle_types(fleet):
    assert {"truck", "pickup", "longboat", "speedboat", "navy_vessel"} <= set(fleet.types)
    types = fleet.types
    assert types["truck"].modes == {"road", "access"} and types["navy_vessel"].modes == {"sea", "access"}
    assert types["navy_vessel"].operating_hours is None  # may sail at night
    for boat in ("longboat", "speedboat"):
        speeds = types[boat].speeds.speed_kmh
        assert speeds["river_up"] < speeds["river_down"]
        assert types[boat].speeds.rapids_kmh < speeds["river_up"]
        assert types[boat].operating_hours is not None  # river by daylight only
    navy_bases = {v.base for v in fleet.vehicles if v.type_id == "navy_vessel"}
    assert navy_bases == {"port:lanal_sangatta", "port:lanal_balikpapan"}


def test_every_kabupaten_has_trucks_at_its_warehouse_and_the_boats_it_needs(fleet, network):
    kabupaten = sorted(network.nodes.loc[network.nodes["kind"] == "ppk", "kabupaten_code"].unique())
    for code in kabupaten:
        own = fleet.for_kabupaten([code]).vehicles
        assert any(v.type_id == "truck" and v.base == f"wh:{code}" for v in own), code
    modes = {
        code: {m for v in fleet.for_kabupaten([code]).vehicles for m in fleet.types[v.type_id].modes}
        for code in kabupaten
    }
    assert "river" in modes["64.11"]  # Mahakam Ulu needs boats
    assert "sea" in modes["64.03"] and "sea" in modes["64.08"]  # Berau and Kutai Timur need sea capacity
    sea_kg = {
        code: sum(
            fleet.types[v.type_id].capacity_kg
            for v in fleet.for_kabupaten([code]).vehicles
            if "sea" in fleet.types[v.type_id].modes
        )
        for code in ("64.03", "64.08")
    }
    assert all(kg >= 10_000 for kg in sea_kg.values()), sea_kg


def test_every_ppk_and_pps_can_be_reached_by_a_vehicle_of_its_tier(fleet, network):
    """Tier 1 reaches each PPK, tier 2 each PPS, from the base of a vehicle serving that kabupaten."""
    matrices = {}
    for type_id, vehicle_type in fleet.types.items():
        bases = sorted({v.base for v in fleet.vehicles if v.type_id == type_id})
        matrices[type_id] = shortest_paths(network, vehicle_type.speeds, sources=bases)
    unreachable = []
    for kind, tier in (("ppk", 1), ("pps", 2)):
        for node, row in network.nodes[network.nodes["kind"] == kind].iterrows():
            if not any(
                v.kabupaten_code == row["kabupaten_code"]
                and fleet.types[v.type_id].tiers.__contains__(tier)
                and np.isfinite(matrices[v.type_id].hours_between(v.base, node))
                for v in fleet.vehicles
            ):
                unreachable.append(node)
    assert unreachable == []


def test_vehicle_ids_are_readable_unique_and_stable(fleet, network):
    ids = [v.vehicle_id for v in fleet.vehicles]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z0-9_]+@[a-z]+:[\w.]+#\d+", i) for i in ids)
    assert "truck@wh:64.11#1" in ids
    spec = load_fleet_spec(FLEET)
    alone = expand_fleet(spec, network, ["64.11"])
    assert [v for v in fleet.vehicles if v.kabupaten_code == "64.11"] == list(alone.vehicles)


def test_base_on_each_ppk_and_for_other_kabupaten(network, tmp_path):
    raw = yaml.safe_load(FLEET.read_text(encoding="utf-8"))
    raw["bases"] = [
        {"type": "pickup", "at": "each_ppk", "count": 2, "kabupaten": ["64.11"]},
        {"type": "truck", "at": "each_warehouse", "count": 1},
        {"type": "navy_vessel", "at": "port:lanal_balikpapan", "count": 1, "kabupaten": ["64.01", "64.09"]},
    ]
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    fleet = load_fleet(path, network)
    mahulu_ppk = (network.nodes["kind"] == "ppk") & (network.nodes["kabupaten_code"] == "64.11")
    assert fleet.count_by_type()["pickup"] == 2 * int(mahulu_ppk.sum())
    assert fleet.count_by_type()["truck"] == 10  # the province warehouse wh:64 is not a kabupaten
    navy = [v for v in fleet.vehicles if v.type_id == "navy_vessel"]
    assert [(v.vehicle_id, v.kabupaten_code) for v in navy] == [
        ("navy_vessel@port:lanal_balikpapan#1", "64.01"),
        ("navy_vessel@port:lanal_balikpapan#2", "64.09"),
    ]


def test_rapids_slow_boats_down(fleet, network):
    rapids = network.legs["rapids"].to_numpy() & (network.legs["mode"] == "river").to_numpy()
    hours = leg_hours(network, fleet.types["longboat"].speeds)
    km = network.legs["length_km"].to_numpy()
    assert np.allclose(hours[rapids], km[rapids] / fleet.types["longboat"].speeds.rapids_kmh)
    # a stretch of riam longer than the operating day (45 km at 3 km/h) is not a leg a kapal motor takes
    slow = fleet.types["kapal_motor"].speeds
    too_long = rapids & (km / slow.rapids_kmh * 60 > slow.longest_leg_min)
    assert too_long.any() and not np.isfinite(leg_hours(network, slow)[too_long]).any()
    assert not np.isfinite(leg_hours(network, fleet.types["truck"].speeds)[rapids]).any()


def bad_fleet(tmp_path, change) -> Path:
    raw = yaml.safe_load(FLEET.read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda r: r["vehicle_types"]["truck"].update(modes=[]),
            "vehicle_types.truck.modes: must not be empty",
        ),
        (
            lambda r: r["vehicle_types"]["truck"].update(capacity_kg=-4000),
            "vehicle_types.truck.capacity_kg: must be greater than 0 (got -4000)",
        ),
        (
            lambda r: r["vehicle_types"]["pickup"].update(speed_kmh={"road": 25, "sea": 10}),
            "vehicle_types.pickup: speed_kmh: sea is given but sea is not in modes",
        ),
        (
            lambda r: r["vehicle_types"]["longboat"].update(speed_kmh={"river_up": 10}),
            "vehicle_types.longboat: speed_kmh: river needs `river` or both `river_up` and `river_down`",
        ),
        (lambda r: r["vehicle_types"]["truck"].update(tier="3"), "vehicle_types.truck.tier: Input should be"),
        (
            lambda r: r["vehicle_types"]["truck"].update(operating_hours={"start": "18:00", "end": "06:00"}),
            "vehicle_types.truck.operating_hours: start must be before end",
        ),
        (
            lambda r: r["vehicle_types"]["truck"].update(operating_hours={"start": "06:00", "end": 1080}),
            'vehicle_types.truck.operating_hours.end: write the time in quotes, e.g. "06:00"',
        ),
        (
            lambda r: r["vehicle_types"]["truck"].pop("operating_hours"),
            "vehicle_types.truck.operating_hours: is required",
        ),
        (
            lambda r: r["bases"].insert(0, {"type": "lorry", "at": "wh:64.01", "count": 1}),
            "bases[0].type: unknown vehicle type 'lorry'",
        ),
        (lambda r: r["bases"][0].update(count=-1), "bases[0].count: must be at least 0"),
        (
            lambda r: r["vehicle_types"]["pickup"].update(unload_min_per_kit=-2),
            "vehicle_types.pickup.unload_min_per_kit: must be at least 0 (got -2)",
        ),
    ],
)
def test_bad_fleet_is_rejected_with_file_and_field(tmp_path, change, expected):
    path = bad_fleet(tmp_path, change)
    with pytest.raises(InputError) as err:
        load_fleet_spec(path)
    assert f"{path}: {expected}" in str(err.value)


def test_every_fleet_problem_at_once_including_network_ones(tmp_path, network):
    def change(raw):
        raw["vehicle_types"]["truck"]["modes"] = []
        raw["vehicle_types"]["speedboat"]["capacity_m3"] = -3
        raw["bases"][0]["at"] = "wh:99.99"
        raw["bases"][1]["kabupaten"] = ["64.99"]

    spec, problems = check_fleet(bad_fleet(tmp_path, change), network.nodes)
    assert spec is None
    text = "\n".join(problems)
    assert "truck.modes: must not be empty" in text
    assert "speedboat.capacity_m3: must be greater than 0" in text
    assert "bases[0].at: unknown node 'wh:99.99'" in text
    assert "bases[1].kabupaten: unknown kabupaten '64.99'" in text


def test_missing_or_malformed_fleet_file(tmp_path):
    with pytest.raises(InputError, match="none.yaml: file not found"):
        load_fleet_spec(tmp_path / "none.yaml")
    path = tmp_path / "fleet.yaml"
    path.write_text("vehicle_types: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputError, match="not valid YAML"):
        load_fleet_spec(path)


FLEET_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["road", "river", "sea", "both", "1", "each_ppk", "wh:64.11", "06:00", "25:00"]),
    st.lists(st.sampled_from(["road", "river", "sea", "air", 3]), max_size=4),
    st.dictionaries(
        st.sampled_from(["road", "river_up", "river_down", "sea", "start", "end"]),
        st.integers(-5, 50),
        max_size=3,
    ),
)
TYPE_FIELDS = [
    "name",
    "modes",
    "capacity_kg",
    "capacity_m3",
    "speed_kmh",
    "rapids_speed_kmh",
    "operating_hours",
    "load_min",
    "unload_min",
    "cost_per_km",
    "cost_per_day",
    "tier",
    "extra",
]


@st.composite
def malformed_fleets(draw) -> dict:
    raw = yaml.safe_load(FLEET.read_text(encoding="utf-8"))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        types, bases = raw.get("vehicle_types"), raw.get("bases")
        where = draw(st.sampled_from(["type", "base", "top"]))
        if where == "type" and isinstance(types, dict) and types:
            body = types[draw(st.sampled_from(sorted(types, key=str)))]
            if isinstance(body, dict):
                body[draw(st.sampled_from(TYPE_FIELDS))] = draw(FLEET_JUNK)
        elif where == "base" and isinstance(bases, list) and bases:
            base = bases[draw(st.integers(0, len(bases) - 1))]
            if isinstance(base, dict):
                base[draw(st.sampled_from(["type", "at", "count", "kabupaten"]))] = draw(FLEET_JUNK)
        else:
            raw[draw(st.sampled_from(["vehicle_types", "bases", "other"]))] = draw(FLEET_JUNK)
    return raw


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=malformed_fleets())
def test_malformed_fleets_give_problems_not_tracebacks(raw, network, tmp_path_factory):
    path = tmp_path_factory.mktemp("fleet", numbered=True) / "fleet.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    spec, problems = check_fleet(path, network.nodes)
    assert (spec is None) == bool(problems)
    if spec is not None:
        expand_fleet(spec, network)


def test_every_default_vehicle_number_says_where_it_comes_from():
    """Capacities, speeds, times and costs each carry a comment: a published spec or an assumption."""
    lines = FLEET.read_text(encoding="utf-8").split("bases:")[0].splitlines()
    numbers = ("capacity_kg", "capacity_m3", "speed_kmh", "rapids_speed_kmh", "load_min", "unload_min")
    numbers += ("unload_min_per_kit", "cost_per_km", "cost_per_day")
    checked = 0
    for line in lines:
        key = line.strip().split(":")[0]
        if key in numbers:
            checked += 1
            note = line.partition("#")[2]
            assert "assumption" in note or "spec" in note, line
    types = yaml.safe_load(FLEET.read_text(encoding="utf-8"))["vehicle_types"].values()
    assert checked == sum(k in body for body in types for k in numbers)  # every number of every type


def test_handling_time_per_kit_is_read_and_defaults_to_zero(tmp_path):
    spec = load_fleet_spec(FLEET)
    assert spec.vehicle_types["pickup"].unload_min_per_kit > 0
    assert all(t.unload_min_per_kit > 0 for t in spec.vehicle_types.values())
    path = bad_fleet(tmp_path, lambda r: r["vehicle_types"]["truck"].pop("unload_min_per_kit"))
    assert load_fleet_spec(path).vehicle_types["truck"].unload_min_per_kit == 0  # older fleet files


def test_pickup_capacity_matches_a_double_cab_bed():
    pickup = load_fleet_spec(FLEET).vehicle_types["pickup"]
    assert 1.2 <= pickup.capacity_m3 <= 1.5  # not 3 m3: the bed is about 1.5 x 1.5 x 0.5 m
