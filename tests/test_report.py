"""Manifests, kabupaten summaries and schedule charts, and the `planner report` command."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from planner.cli import build_app
from planner.errors import InputError
from planner.network import write_network
from planner.plan import write_plan
from planner.report import (
    ACTIVITY_TOTAL,
    ACTIVITY_TRIP_TOTAL,
    ACTIVITY_UNLOAD,
    item_infos,
    manifest_frame,
    node_info_table,
    safe_file_stem,
    vehicle_routes,
    write_reports,
)


def _plan_deliveries(plan) -> Counter:
    total: Counter = Counter()
    for route in plan.routes:
        for stop in route.stops:
            total.update(stop.deliver)
    return total


def _manifest_csvs(out: Path) -> list[pd.DataFrame]:
    return [pd.read_csv(p) for p in sorted((out / "manifests").glob("*.csv"))]


def test_manifest_quantities_add_up_to_the_plan(
    tmp_path, maps_plan, maps_network, maps_items, maps_node_info
):
    written = write_reports(maps_plan, maps_network, maps_items, maps_node_info, tmp_path)
    assert all(p.is_file() for p in written)
    frames = _manifest_csvs(tmp_path)
    assert len(frames) == len({r.vehicle_id for r in maps_plan.routes})
    expected = _plan_deliveries(maps_plan)
    unloaded: Counter = Counter()
    totals: Counter = Counter()
    for frame in frames:
        rows = frame[frame["activity"] == ACTIVITY_UNLOAD]
        unloaded.update({item: int(rows[item].sum()) for item in expected})
        total_row = frame[frame["activity"] == ACTIVITY_TOTAL]
        assert len(total_row) == 1
        totals.update({item: int(total_row[item].iloc[0]) for item in expected})
        # the trip totals add up to the vehicle total
        trips = frame[frame["activity"] == ACTIVITY_TRIP_TOTAL]
        for item in expected:
            assert int(trips[item].sum()) == int(total_row[item].iloc[0])
    assert unloaded == expected
    assert totals == expected


def test_manifest_lists_stops_in_order_with_times_weight_and_volume(maps_plan, maps_network, maps_items):
    items = item_infos(maps_items, maps_plan)
    truck = vehicle_routes(maps_plan)["truck@wh:64.99#1"]
    frame = manifest_frame(truck, maps_network, items, node_info_table(None))
    stops = frame[frame["activity"].isin([ACTIVITY_UNLOAD, "stop", "load"])]
    assert list(stops["node_id"]) == [s.node_id for s in truck[0].stops]
    assert list(stops["arrival"]) == sorted(stops["arrival"])
    assert list(stops["seq"]) == list(range(1, len(truck[0].stops) + 1))
    ppk = frame[(frame["node_id"] == "ppk:64.99.01") & (frame["activity"] == ACTIVITY_UNLOAD)].iloc[0]
    deliver = truck[0].stops[1].deliver
    units = {i.id: i for i in items}
    assert ppk["weight_kg"] == pytest.approx(sum(q * units[i].unit_kg for i, q in deliver.items()), abs=1e-3)
    assert ppk["volume_m3"] == pytest.approx(sum(q * units[i].unit_m3 for i, q in deliver.items()), abs=1e-4)
    assert ppk["name"] == "PPK Alpha"
    total = frame[frame["activity"] == ACTIVITY_TOTAL].iloc[0]
    assert total["weight_kg"] == pytest.approx(frame[frame["activity"] == ACTIVITY_UNLOAD]["weight_kg"].sum())


def test_transfer_loads_are_listed_but_not_counted_as_delivered(maps_plan, maps_network, maps_items):
    items = item_infos(maps_items, maps_plan)
    ship = vehicle_routes(maps_plan)["navy@port:lanal_sangatta#1"]
    frame = manifest_frame(ship, maps_network, items, node_info_table(None))
    load = frame[frame["activity"] == "load"]
    assert list(load["node_id"]) == ["port:lanal_sangatta"]
    assert int(load["surat_suara"].iloc[0]) == 310
    total = frame[frame["activity"] == ACTIVITY_TOTAL].iloc[0]
    assert int(total["surat_suara"]) == 310  # delivered once on the island, not twice


def test_xlsx_manifest_has_item_names_and_the_same_numbers(tmp_path, maps_plan, maps_network, maps_items):
    write_reports(maps_plan, maps_network, maps_items, None, tmp_path)
    stem = safe_file_stem("truck@wh:64.99#1")
    csv = pd.read_csv(tmp_path / "manifests" / f"{stem}.csv")
    sheet = load_workbook(tmp_path / "manifests" / f"{stem}.xlsx").active
    assert "SURAT JALAN" in sheet["A1"].value and "truck@wh:64.99#1" in sheet["A1"].value
    header_row = next(r for r in range(1, 10) if sheet.cell(row=r, column=1).value == "vehicle_id")
    headers = [c.value for c in sheet[header_row]]
    assert "Surat suara" in headers and "surat_suara" not in headers
    column = headers.index("Surat suara") + 1
    values = [
        sheet.cell(row=r, column=column).value for r in range(header_row + 1, header_row + 1 + len(csv))
    ]
    assert values == csv["surat_suara"].tolist()


def test_kabupaten_summary_and_schedule(tmp_path, maps_plan, maps_network, maps_items, maps_node_info):
    written = write_reports(maps_plan, maps_network, maps_items, maps_node_info, tmp_path)
    summary = tmp_path / "kabupaten" / "64.99-summary.xlsx"
    assert summary in written
    book = load_workbook(summary)
    assert book.sheetnames == ["Vehicles", "Deliveries", "Unserved"]
    vehicles = pd.read_excel(summary, sheet_name="Vehicles", header=3)
    assert sorted(vehicles["vehicle_id"]) == sorted({r.vehicle_id for r in maps_plan.routes})
    assert vehicles["km"].sum() == pytest.approx(
        sum(maps_network.legs.at[leg, "length_km"] for r in maps_plan.routes for leg in r.legs)
    )
    deliveries = pd.read_excel(summary, sheet_name="Deliveries", header=3)
    assert int(deliveries["Surat suara"].sum()) == _plan_deliveries(maps_plan)["surat_suara"]
    hostile = deliveries[deliveries["node_id"] == "pps:64.99.01.2001"].iloc[0]
    assert hostile["name"] == "<script>alert(1)</script>" and hostile["dpt"] == 1170
    unserved = pd.read_excel(summary, sheet_name="Unserved", header=3)
    assert list(unserved["node_id"]) == ["pps:64.99.02.2003"]
    for png in (tmp_path / "schedule.png", tmp_path / "kabupaten" / "64.99-schedule.png"):
        assert png in written
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000


def test_reports_are_deterministic(tmp_path, maps_plan, maps_network, maps_items, maps_node_info):
    first = write_reports(maps_plan, maps_network, maps_items, maps_node_info, tmp_path / "a")
    time.sleep(1.1)  # the clock moves on: no save time may leak into the files
    second = write_reports(maps_plan, maps_network, maps_items, maps_node_info, tmp_path / "b")
    for a, b in zip(first, second, strict=True):
        assert a.relative_to(tmp_path / "a") == b.relative_to(tmp_path / "b")
        assert a.read_bytes() == b.read_bytes(), a.name


def test_rewriting_removes_manifests_of_vehicles_no_longer_planned(
    tmp_path, maps_plan, maps_network, maps_items
):
    write_reports(maps_plan, maps_network, maps_items, None, tmp_path)
    smaller = maps_plan.model_copy(update={"routes": maps_plan.routes[:2]})
    write_reports(smaller, maps_network, maps_items, None, tmp_path)
    stems = sorted(p.stem for p in (tmp_path / "manifests").glob("*.csv"))
    assert stems == sorted(safe_file_stem(r.vehicle_id) for r in smaller.routes)


def test_without_catalog_quantities_stay_and_weights_are_blank(tmp_path, maps_plan, maps_network):
    write_reports(maps_plan, maps_network, None, None, tmp_path)
    frames = _manifest_csvs(tmp_path)
    unloaded = Counter()
    for frame in frames:
        rows = frame[frame["activity"] == ACTIVITY_UNLOAD]
        assert rows["weight_kg"].isna().all()
        unloaded.update({item: int(rows[item].sum()) for item in _plan_deliveries(maps_plan)})
    assert unloaded == _plan_deliveries(maps_plan)


def test_plan_on_another_network_names_the_unknown_legs(tmp_path, maps_plan, maps_network, maps_items):
    broken = maps_plan.model_copy(deep=True)
    broken.routes[0].legs.append("road:wh:64.99-nowhere")
    with pytest.raises(InputError) as err:
        write_reports(broken, maps_network, maps_items, None, tmp_path)
    assert "road:wh:64.99-nowhere" in str(err.value)


def test_schedule_takes_dollar_signs_literally(tmp_path, maps_plan):
    from planner.report import plot_schedule

    plan = maps_plan.model_copy(deep=True)
    plan.routes[0].vehicle_id = "boat$1"
    plan.scenario.name = "cost $5 $"
    png = plot_schedule(plan, tmp_path / "s.png", f"Schedule: {plan.scenario.name}")
    assert png.stat().st_size > 5_000


def test_safe_file_stem():
    assert safe_file_stem("truck@wh:64.11#1") == "truck_wh_64.11_1"
    assert safe_file_stem("../../etc/passwd") == "etc_passwd"
    assert "/" not in safe_file_stem("a/b\\c")


# ---------------------------------------------------------------- the command


@pytest.fixture
def maps_plan_on_disk(tmp_path, maps_plan, maps_network, maps_node_info) -> Path:
    network_path = write_network(maps_network, tmp_path / "net" / "network.gpkg")
    plan = maps_plan.model_copy(update={"network": str(network_path)})
    plan_path = write_plan(plan, tmp_path / "run" / "plan.json")
    maps_node_info.to_csv(tmp_path / "run" / "demand-pps.csv", index=False)
    return plan_path


def test_report_command_writes_everything_next_to_the_plan(maps_plan_on_disk, maps_plan):
    result = CliRunner().invoke(build_app(), ["report", str(maps_plan_on_disk), "--maps"])
    assert result.exit_code == 0, result.output
    run = maps_plan_on_disk.parent
    vehicles = {r.vehicle_id for r in maps_plan.routes}
    assert len(list((run / "manifests").glob("*.csv"))) == len(vehicles)
    assert len(list((run / "manifests").glob("*.xlsx"))) == len(vehicles)
    assert (
        (run / "schedule.png").is_file()
        and (run / "map-kpu.html").is_file()
        and (run / "map-lanal.html").is_file()
    )
    assert "No catalog found" in result.output  # no scenario: quantities without weights
    frame = pd.read_csv(run / "manifests" / f"{safe_file_stem('pickup@ppk:64.99.01#1')}.csv")
    desa = frame[frame["node_id"] == "pps:64.99.01.2001"]
    assert desa["tps"].astype(int).tolist() == [2]  # TPS from the demand CSV next to the plan


KALTIM = Path(__file__).resolve().parent.parent / "networks" / "kaltim"
MAHULU_SCENARIO = KALTIM.parent.parent / "scenarios" / "mahulu-river.yaml"


@pytest.mark.skipif(
    not (KALTIM / "network.gpkg").is_file() or not MAHULU_SCENARIO.is_file(),
    reason="needs networks/kaltim/network.gpkg and scenarios/mahulu-river.yaml",
)
def test_report_command_with_a_scenario_uses_its_catalog_and_demand(tmp_path, maps_kaltim_plan):
    from planner.network import load_network

    plan = maps_kaltim_plan(load_network(KALTIM), kabupaten="64.11")
    plan_path = write_plan(plan, tmp_path / "plan.json")
    result = CliRunner().invoke(
        build_app(), ["report", str(plan_path), "--scenario", str(MAHULU_SCENARIO), "--maps"]
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "manifests" / f"{safe_file_stem('pickup@ppk:64.11.01#1')}.csv")
    assert (
        len(
            [
                c
                for c in frame.columns
                if c
                not in {
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
                    "tps_kits",  # the TPS numbers of the kits handed over (issue 12)
                    "arrival",
                    "departure",
                    "weight_kg",
                    "volume_m3",
                }
            ]
        )
        == 14
    )  # every catalog item has a column
    desa = frame[frame["activity"] == ACTIVITY_UNLOAD]
    assert (desa["tps"] >= 1).all() and (desa["dpt"] > 0).all()  # TPS and DPT from the scenario's demand
    assert desa["weight_kg"].notna().all() and (desa["weight_kg"] > 0).all()
    assert "Ujoh Bilang" in (tmp_path / "map-kpu.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "missing/plan.json"], "plan file not found"),
        (["report", "{plan}", "--scenario", "missing.yaml"], "scenario file not found"),
        (["report", "{plan}", "--demand", "no-such-folder"], "demand folder not found"),
    ],
)
def test_report_command_bad_input_is_a_plain_error(maps_plan_on_disk, args, message):
    import subprocess
    import sys

    argv = [a.replace("{plan}", str(maps_plan_on_disk)) for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "planner.cli", *argv],
        capture_output=True,
        text=True,
        cwd=maps_plan_on_disk.parent,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_report_command_names_a_missing_network(tmp_path, maps_plan):
    plan_path = write_plan(
        maps_plan.model_copy(update={"network": "nowhere/network.gpkg"}), tmp_path / "plan.json"
    )
    result = CliRunner().invoke(build_app(), ["report", str(plan_path)])
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError)
    assert "nowhere/network.gpkg" in str(result.exception)
