"""The validator trusts nothing a plan says about itself (issue 16, section 3): each hostile plan is caught."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from planner.cli import main
from planner.errors import InputError
from planner.kpis import plan_kpis
from planner.plan import Plan, PlanKpis, Replan, Unserved, content_hash, read_plan, to_json, write_plan
from planner.validate import validate_plan

ROOT = Path(__file__).resolve().parents[1]
MAHULU = ROOT / "scenarios" / "mahulu-river.yaml"


@pytest.fixture(scope="module")
def solved(solve_mahulu):
    plan, expect = solve_mahulu
    assert validate_plan(plan, expect, allow_unserved=True) == []  # the solver's unserved, as listed
    return plan, expect


def forged(plan: Plan, **update) -> Plan:
    return plan.model_copy(deep=True).model_copy(update=update)


def served_pps(plan: Plan) -> str:
    return next(s.node_id for r in plan.routes for s in r.stops if s.deliver and s.node_id.startswith("pps:"))


def road_leg_of(plan: Plan) -> tuple[object, str]:
    route = next(r for r in plan.routes if any(leg.startswith("road:") for leg in r.legs))
    return route, next(leg for leg in route.legs if leg.startswith("road:"))


def run_validate(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", *args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out + captured.err


# ---------------------------------------------------------------- what the plan claims


def test_an_empty_plan_is_not_valid(solved):
    plan, expect = solved
    problems = validate_plan(forged(plan, routes=[], unserved=[]), expect)
    pps = sorted(expect.pps_goods)[0]
    assert f"{pps}: receives nothing and is not listed as unserved" in problems


def test_every_pps_falsely_listed_unserved_for_capacity_is_caught(solved):
    plan, expect = solved
    lies = [
        Unserved(node_id=p, kabupaten_code=p.split(":")[1][:5], reason="capacity", detail="no room")
        for p in sorted(expect.pps_goods)
    ]
    served = {s.node_id for r in plan.routes for s in r.stops if s.deliver}
    tier2 = [r for r in plan.routes if not any(s.node_id.startswith("pps:") and s.deliver for s in r.stops)]
    bad = forged(plan, routes=tier2, unserved=lies)
    problems = validate_plan(bad, expect)
    pps = sorted(p for p in expect.pps_goods if p in served)[0]
    assert any(
        p.startswith(f"{pps}: listed unserved (capacity), but ") and "can reach it" in p for p in problems
    )
    # the caller may accept unserved stops as listed; the routes and balances are still checked
    assert not any("listed unserved (capacity)" in p for p in validate_plan(bad, expect, allow_unserved=True))


def test_routes_before_the_calendar_start_are_caught(solved):
    plan, expect = solved
    bad = forged(plan)
    route = bad.routes[0]
    for stop in route.stops:
        stop.arrival -= timedelta(days=30)
        stop.departure -= timedelta(days=30)
    problems = validate_plan(bad, expect)
    assert any(p.startswith(f"{route.vehicle_id} trip {route.trip}: starts at") for p in problems)
    assert any("before the calendar start" in p for p in problems)


def test_a_calendar_that_is_not_the_scenarios_is_caught(solved):
    plan, expect = solved
    early = plan.calendar.model_copy(update={"start": plan.calendar.start - timedelta(days=30)})
    problems = validate_plan(forged(plan, calendar=early), expect)
    assert any(p.startswith("calendar.start is ") and "the scenario says" in p for p in problems)


def test_a_forged_stranded_at_is_caught(solved):
    plan, expect = solved
    bad = forged(plan)
    route = bad.routes[0]
    route.stranded_at = route.base
    problems = validate_plan(bad, expect)
    assert f"{route.vehicle_id} trip {route.trip}: stranded_at is set, but only a re-plan" in " ".join(
        problems
    )


def test_a_stranded_at_forged_in_a_checked_replan_is_caught(solved):
    """Even in a re-plan whose record holds, a vehicle with an open way home is not stranded."""
    from planner.replan import segments

    plan, expect = solved
    at = plan.calendar.start + timedelta(hours=7)
    record = Replan(based_on="plan.json", based_on_hash=content_hash(to_json(plan)), at=at)
    bad = forged(plan, replan=record)
    route = next(
        r for r in bad.routes if r.stops[0].departure < at and len(r.stops) > 3 and r.stops[-2].arrival > at
    )
    k = len(route.stops) - 2  # its last delivery, after `at`: it "stays" there
    route.legs = [leg for part in segments(route, expect.network)[:k] for leg in part]
    route.stops = route.stops[: k + 1]
    route.stranded_at = route.stops[k].node_id
    problems = validate_plan(bad, expect, previous=plan, allow_unserved=True)
    assert any(
        p.startswith(
            f"{route.vehicle_id} trip {route.trip}: stranded_at {route.stranded_at}, but open legs lead"
        )
        for p in problems
    ), problems


def test_goods_forged_as_brought_back_are_caught(solved):
    plan, expect = solved
    bad = forged(plan)
    route = next(r for r in bad.routes if r.stops[0].load)
    route.returned = dict(route.stops[0].load)
    problems = validate_plan(bad, expect)
    assert any(p.startswith(f"{route.vehicle_id} trip {route.trip}: returned is set") for p in problems)


def test_a_self_declared_unblock_does_not_open_a_blocked_leg(solved):
    plan, expect = solved
    route, leg = road_leg_of(plan)
    closed = replace(expect, network=expect.network.blocked([leg]), blocked_legs=(leg,))
    record = Replan(
        based_on="nowhere.json", based_on_hash="sha256:0", at=plan.calendar.start, unblocked=[leg]
    )
    bad = forged(plan, blocked_legs=[], replan=record)
    problems = validate_plan(bad, closed)
    assert f"{route.vehicle_id} trip {route.trip}: leg {leg} is blocked" in problems
    assert any(p.startswith("replan: based on nowhere.json, which is not given") for p in problems)
    assert f"blocked_legs: the scenario's blocked leg {leg} is missing" in problems


def test_an_unblock_of_a_leg_the_previous_plan_did_not_block_is_caught(solved):
    plan, expect = solved
    route, leg = road_leg_of(plan)
    closed = replace(expect, network=expect.network.blocked([leg]), blocked_legs=(leg,))
    record = Replan(
        based_on="plan.json",
        based_on_hash=content_hash(to_json(plan)),
        at=plan.calendar.start,
        unblocked=[leg],
    )
    problems = validate_plan(forged(plan, replan=record), closed, previous=plan)
    assert f"replan.unblocked: {leg} was not blocked in the previous plan" in problems
    assert f"{route.vehicle_id} trip {route.trip}: leg {leg} is blocked" in problems


def test_a_self_declared_replan_at_does_not_make_a_blocked_leg_legal(solved):
    plan, expect = solved
    route, leg = road_leg_of(plan)
    late = plan.calendar.pps_deadline - timedelta(minutes=1)
    record = Replan(based_on="plan.json", based_on_hash="sha256:0", at=late, blocked=[leg])
    bad = forged(plan, blocked_legs=[leg], replan=record)
    problems = validate_plan(bad, expect)
    assert f"{route.vehicle_id} trip {route.trip}: leg {leg} is blocked" in problems
    # with the real previous plan but a hash that is not its own, it is still not believed
    problems = validate_plan(bad, expect, previous=plan)
    assert any(
        p.startswith("replan.based_on_hash sha256:0 is not the hash of the previous plan") for p in problems
    )
    assert f"{route.vehicle_id} trip {route.trip}: leg {leg} is blocked" in problems


def test_a_replan_that_rewrites_the_past_is_caught(solved):
    plan, expect = solved
    at = plan.calendar.start + timedelta(hours=7)
    record = Replan(based_on="plan.json", based_on_hash=content_hash(to_json(plan)), at=at)
    bad = forged(plan, replan=record)
    route = next(r for r in bad.routes if r.stops[1].arrival < at)
    route.stops[1].departure += timedelta(minutes=5)
    problems = validate_plan(bad, expect, previous=plan)
    assert any(
        p.startswith(f"{route.vehicle_id} trip {route.trip}: stop 1 ")
        and "differs from the previous plan" in p
        for p in problems
    )


def test_a_pps_both_served_and_unserved_is_caught(solved):
    plan, expect = solved
    pps = served_pps(plan)
    listed = [
        *plan.unserved,
        Unserved(node_id=pps, kabupaten_code=pps.split(":")[1][:5], reason="unreachable"),
    ]
    problems = validate_plan(forged(plan, unserved=listed), expect, allow_unserved=True)
    assert f"{pps}: listed unserved, but it receives all its items" in problems


def test_forged_kpis_are_caught(solved):
    plan, expect = solved
    kpis = plan.kpis.model_dump()
    kpis["total"]["cost_idr"] = 1
    code = next(iter(kpis["kabupaten"]))
    kpis["kabupaten"][code]["km_by_mode"]["road"] = 0.0
    problems = validate_plan(forged(plan, kpis=PlanKpis.model_validate(kpis)), expect)
    assert any(p.startswith("kpis.total.cost_idr: the plan says 1, its routes give ") for p in problems)
    assert any(p.startswith(f"kpis.kabupaten.{code}.km_by_mode.road: the plan says 0.0") for p in problems)


def test_a_wrong_scenario_hash_is_caught(solved):
    plan, expect = solved
    problems = validate_plan(
        forged(plan, scenario=plan.scenario.model_copy(update={"hash": "sha256:ab"})), expect
    )
    assert any(
        p.startswith("scenario.hash sha256:ab is not the hash of the scenario file given") for p in problems
    )


# ---------------------------------------------------------------- malformed files: exit 2 with the field named


def _plan_json(plan: Plan) -> dict:
    return json.loads(to_json(plan))


def test_a_route_without_stops_is_exit_2_naming_the_field(tmp_path, solved, capsys):
    raw = _plan_json(solved[0])
    raw["routes"][0]["stops"] = []
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    code, text = run_validate([str(path), str(MAHULU)], capsys)
    assert code == 2 and "routes.0.stops" in text and "Traceback" not in text


def test_a_time_without_offset_is_exit_2_naming_the_field(tmp_path, solved, capsys):
    raw = _plan_json(solved[0])
    raw["routes"][0]["stops"][1]["arrival"] = "2024-11-23T09:00:00"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    code, text = run_validate([str(path), str(MAHULU)], capsys)
    assert code == 2 and "routes.0.stops.1.arrival" in text and "timezone" in text


def test_deep_nesting_is_exit_2_naming_the_field(tmp_path, solved, capsys):
    raw = _plan_json(solved[0])
    path = tmp_path / "plan.json"
    text = json.dumps(raw)
    for depth in (200, 100_000):  # one that json can read, one that it cannot
        nested = "[" * depth + "]" * depth
        path.write_text(text[:-1] + f', "kpis_extra": {nested}}}', encoding="utf-8")
        code, out = run_validate([str(path), str(MAHULU)], capsys)
        assert code == 2 and "nested deeper than" in out and "Traceback" not in out
    raw["kpis"] = {"total": json.loads("[" * 200 + "]" * 200)}
    path.write_text(json.dumps(raw), encoding="utf-8")
    code, out = run_validate([str(path), str(MAHULU)], capsys)
    assert code == 2 and "field 'kpis.total" in out


# ---------------------------------------------------------------- the command


def test_validate_command_exit_1_names_the_violation_and_allow_unserved_accepts_listed_stops(
    tmp_path, solved, capsys
):
    plan, _ = solved
    pps = served_pps(plan)
    routes = forged(plan).routes
    for route in routes:
        for stop in route.stops:
            if stop.node_id == pps:
                for item, qty in stop.deliver.items():
                    route.stops[0].load[item] -= qty
                stop.deliver = {}
                stop.tps_kits = []  # nor any of its TPS kits
    routes = [r for r in routes if r.stops[0].load]
    listed = sorted(
        [*plan.unserved, Unserved(node_id=pps, kabupaten_code=pps.split(":")[1][:5], reason="capacity")],
        key=lambda u: u.node_id,
    )
    bad = forged(plan, routes=routes, unserved=listed)
    bad = bad.model_copy(update={"kpis": plan_kpis(bad, solved[1], solved[1].kabupaten_codes())})
    path = write_plan(bad, tmp_path / "plan.json")
    code, text = run_validate([str(path), str(MAHULU)], capsys)
    assert code == 1 and f"{pps}: listed unserved (capacity)" in text
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(path), str(MAHULU), "--allow-unserved"])
    assert exit_info.value.code in (0, None), capsys.readouterr().out
    assert "is valid" in capsys.readouterr().out


SOLVER_MODULES = (
    "('ortools', 'pyvrp', 'planner.dispatch', 'planner.search', 'planner.model', 'planner.pipeline')"
)


def test_validate_does_not_import_the_solver(tmp_path, solved):
    """Neither the module nor the command: a plan can be checked where the solver is not installed."""
    plan_file = write_plan(solved[0], tmp_path / "plan.json")
    code = (
        "import sys\n"
        "import planner.validate\n"
        f"loaded = lambda: sorted(m for m in sys.modules if m in {SOLVER_MODULES} or m.split('.')[0] in {SOLVER_MODULES})\n"
        "print('import:', loaded())\n"
        "from planner.cli import main\n"
        f"sys.argv = ['planner', 'validate', {str(plan_file)!r}, {str(MAHULU)!r}, '--allow-unserved']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    print('exit:', done.code)\n"
        "print('command:', loaded())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "import: []" in result.stdout and "command: []" in result.stdout, result.stdout
    assert "exit: 0" in result.stdout and "is valid" in result.stdout


# ---------------------------------------------------------------- found by a hostile tester (issue 16 follow-up)


@pytest.mark.parametrize("code", ["../../../../tmp/ESCAPED", "64.11/x", "=HYPERLINK(1)"])
def test_a_kabupaten_code_that_is_not_one_is_refused_before_anything_is_written(tmp_path, solved, code):
    """A kabupaten code names files (maps/map-<code>.html, documents/<code>/): a path in it is exit 2."""
    raw = json.loads(to_json(solved[0]))
    raw["unserved"].append({"node_id": "pps:64.11.01.2001", "kabupaten_code": code, "reason": "capacity"})
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(InputError, match="unserved.*kabupaten_code"):
        read_plan(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]


def test_a_number_too_long_to_read_is_exit_2(tmp_path, solved):
    text = to_json(solved[0]).replace('"format"', '"huge": ' + "9" * 5000 + ', "format"', 1)
    path = tmp_path / "plan.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="not a JSON file"):
        read_plan(path)


def test_a_forged_timezone_is_a_violation(solved):
    plan, expect = solved[0], solved[1]
    forged = plan.model_copy(
        update={"calendar": plan.calendar.model_copy(update={"timezone": "Mars/Olympus"})}
    )
    assert any("calendar.timezone" in p for p in validate_plan(forged, expect, allow_unserved=True))
