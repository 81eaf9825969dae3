"""The distribution planner end to end on a real kabupaten (issue 4)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from planner.network_check import check_network
from planner.plan import read_plan, to_json
from planner.validate import validate_plan

ROOT = Path(__file__).resolve().parents[1]
MAHULU = ROOT / "scenarios" / "mahulu-river.yaml"


def test_mahakam_ulu_plan_is_valid_and_uses_boats_over_the_riam(solve_mahulu):
    plan, expect = solve_mahulu
    assert validate_plan(plan, expect, allow_unserved=True) == []  # capacity / too_late: not provable
    types = {r.vehicle_type for r in plan.routes}
    assert "truck" in types and types & {"speedboat", "longboat"}
    legs = expect.network.legs
    boat_legs = [leg for r in plan.routes if r.vehicle_type in ("speedboat", "longboat") for leg in r.legs]
    assert any(legs.loc[leg, "rapids"] for leg in boat_legs), (
        "Long Apari and Long Pahangai lie above the riam"
    )
    # goods for the river-only kecamatan change mode at a port: a truck drops them, a boat takes them on
    drops = {s.node_id for r in plan.routes if r.vehicle_type == "truck" for s in r.stops if s.deliver}
    boat_bases = {r.base for r in plan.routes if r.tier == 1 and r.vehicle_type != "truck"}
    assert boat_bases and boat_bases <= drops


def test_every_desa_is_served_or_named_with_a_reason(solve_mahulu):
    plan, expect = solve_mahulu
    delivered = {s.node_id for r in plan.routes for s in r.stops if s.deliver}
    unserved = {u.node_id: u.reason for u in plan.unserved}
    for pps in expect.pps_goods:
        assert (pps in delivered) or (pps in unserved)
    assert set(unserved.values()) <= {"unreachable", "no_vehicle", "too_late", "capacity"}
    assert len(unserved) <= 10, unserved


def test_deterministic_mode_gives_an_identical_plan(solve_mahulu, solve_scenario):
    again, _ = solve_scenario(MAHULU)
    assert to_json(again) == to_json(solve_mahulu[0])


def test_a_cut_off_desa_is_unserved_as_unreachable_not_a_crash(tmp_path, solve_mahulu, solve_scenario):
    _, expect = solve_mahulu
    legs = expect.network.legs
    trib = legs[legs["origin"] == "tributary"]
    jetty = next(n for n in trib["from_node"] if n.startswith("jetty:64.11.04"))
    cut = sorted(trib.index[(trib["from_node"] == jetty) | (trib["to_node"] == jetty)])
    desa = expect.network.nodes.loc[jetty, "host"]
    plan, cut_expect = solve_scenario(mahulu_with_blocked_legs(tmp_path, cut))
    reasons = {u.node_id: u.reason for u in plan.unserved}
    assert reasons.get(desa) == "unreachable"
    assert sorted(plan.blocked_legs) == cut
    assert validate_plan(plan, cut_expect, allow_unserved=True) == []
    assert not any(p.startswith(f"{desa}:") for p in validate_plan(plan, cut_expect)), "provably unreachable"


def test_a_river_blocked_downstream_only_is_no_way_back_not_capacity(tmp_path, solve_mahulu, solve_scenario):
    plan, expect = solve_mahulu
    legs = expect.network.legs
    used = {leg for r in plan.routes for leg in r.legs}
    downstream = sorted(
        leg for leg in used if legs.loc[leg, "mode"] == "river" and legs.loc[leg, "direction"] == "down"
    )
    blocked = downstream[len(downstream) // 2]
    cut_plan, cut_expect = solve_scenario(mahulu_with_blocked_legs(tmp_path, [blocked]))
    assert validate_plan(cut_plan, cut_expect, allow_unserved=True) == []
    assert cut_plan.unserved, "boats that can go up but not come back cannot serve the desa above the block"
    # every desa the block leaves without a way back is unserved as unreachable, never as capacity; the
    # others may miss their deadline on the detour (too_late, capacity) but are not called unreachable
    no_way = {u[0] for u in check_network(cut_expect.network).unreachable if u[0].startswith("pps:")}
    called = {
        u.node_id for u in cut_plan.unserved if u.reason == "unreachable" and u.node_id.startswith("pps:")
    }
    assert no_way and called == no_way
    assert any("none lead back" in u.detail for u in cut_plan.unserved if u.reason == "unreachable")
    # only the return is missing: the way up stays open
    cut_legs = cut_expect.network.legs
    back = (cut_legs["from_node"] == legs.loc[blocked, "to_node"]) & (
        cut_legs["to_node"] == legs.loc[blocked, "from_node"]
    )
    assert list(cut_legs.loc[back, "status"]) == ["open"] and cut_legs.loc[blocked, "status"] == "blocked"


def mahulu_with_blocked_legs(folder: Path, blocked: list[str]) -> Path:
    scenario = folder / "blocked.yaml"
    text = MAHULU.read_text(encoding="utf-8").replace(
        "blocked_legs: []", f"blocked_legs: {json.dumps(blocked)}"
    )
    text = text.replace("../networks", str(ROOT / "networks")).replace(
        "common/", str(ROOT / "scenarios/common") + "/"
    )
    scenario.write_text(text, encoding="utf-8")
    return scenario


def test_solve_and_validate_commands_write_a_plan_that_validates(tmp_path):
    out = tmp_path / "out"
    run = [sys.executable, "-m", "planner.cli"]
    solved = subprocess.run(
        [
            *run,
            "solve",
            str(MAHULU),
            "--out",
            str(out),
            "--time-limit",
            "2",
            "--deterministic",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert solved.returncode == 0, solved.stdout + solved.stderr
    assert "64.11" in solved.stdout
    for name in ("plan.json", "stops.csv", "legs.csv", "unserved.csv"):
        assert (out / name).is_file()
    plan = read_plan(out / "plan.json")
    assert plan.routes and plan.kpis.total.vehicles_used > 0
    checked = subprocess.run(
        [*run, "validate", str(out / "plan.json"), str(MAHULU)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "is valid" in checked.stdout


def test_solve_rejects_a_bad_scenario_with_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnetwork: nowhere\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "planner.cli", "solve", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "bad.yaml" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()
