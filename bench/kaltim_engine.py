"""The routing engine on the real Kaltim problems: timings per kabupaten, and quality against plain OR-Tools.

    .venv/bin/python -m bench.kaltim_engine [--scenario scenarios/kaltim-2024.yaml] [--time-limit 12]

1. Plans every kabupaten of the scenario in this process, one after the other, exactly as `planner solve`
   does (planner.dispatch), and records each routing problem the dispatcher hands to the engine, with its
   size, time budget, wall time, cost and unserved stops.
2. Solves each recorded problem again with plain OR-Tools (SAVINGS + guided local search on the same
   model) under the same time budget, and compares the objective (routing cost + penalties of unserved
   stops) and the unserved stops.
3. Solves each recorded problem with PyVRP alone under the same budget, on what PyVRP can express of it
   (capacities, time windows, vehicle types and chained trips; not the night breaks), reads its routes back
   into the full model (stops that do not fit there count as unserved) and compares the distance driven.

Writes bench/results/kaltim-engine.json; `python -m bench.kaltim_engine --render` rewrites the Kaltim table
in BENCHMARKS.md from it.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from dataclasses import replace
from pathlib import Path

from bench.benchmarks_md import BENCHMARKS_MD, replace_section
from planner import dispatch
from planner.fileio import write_json
from planner.model import RoutingProblem, build_model, eligible_vehicles, route_distance
from planner.search import (
    RoutingSolution,
    SearchSettings,
    pyvrp_seed,
    read_seed,
    search_parameters,
    solve,
)
from planner.vrplib_bench import environment

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "kaltim-engine.json"


def _summary(solution: RoutingSolution) -> dict:
    mandatory_missing = solution.status == "incomplete"
    return {
        "distance": solution.total_distance,
        "status": solution.status,
        "objective": solution.objective,
        "cost": solution.total_cost,
        "unserved": len(solution.unserved),
        "mandatory_missing": mandatory_missing,
        "routes": len(solution.used_routes),
        "wall_s": solution.wall_time_s,
        "seed_source": solution.seed_source,
    }


def record_kabupaten(
    scenario: Path, time_limit: float | None, only: list[str] | None = None
) -> tuple[list[dict], list[tuple]]:
    """Plan each kabupaten in-process; return per-kabupaten timings and the recorded (problem, settings)."""
    from planner.pipeline import kabupaten_tasks, load_problem, search_settings

    problem = load_problem(scenario)
    settings = search_settings(problem, time_limit)
    tasks = [t for t in kabupaten_tasks(problem, settings) if not only or t.kabupaten_code in only]
    recorded: list[tuple] = []
    engine_solve = dispatch.solve

    def recording_solve(problem: RoutingProblem, layer_settings: SearchSettings, *args, **kwargs):
        solution = engine_solve(problem, layer_settings, *args, **kwargs)
        recorded.append((current["code"], problem, layer_settings, solution))
        return solution

    current = {"code": ""}
    timings = []
    dispatch.solve = recording_solve
    try:
        for task in tasks:
            current["code"] = task.kabupaten_code
            started = time.perf_counter()
            result = dispatch.plan_kabupaten(task)
            timings.append(
                {
                    "kabupaten": task.kabupaten_code,
                    "pps": len(task.pps_goods),
                    "ppk": len(task.ppk_goods),
                    "vehicles": len(task.vehicles),
                    "budget_s": task.settings.time_limit_s,
                    "wall_s": round(time.perf_counter() - started, 2),
                    "trips": len(result.trips),
                    "unserved": len(result.unserved),
                }
            )
            print(timings[-1], flush=True)
    finally:
        dispatch.solve = engine_solve
    return timings, recorded


COMPARATORS = {  # plain OR-Tools on the same model: no seed, guided local search
    "ortools-savings": "savings",
    "ortools-pci": "parallel-cheapest-insertion",  # what the planner falls back to on time-constrained problems
}


def pyvrp_alone(problem: RoutingProblem, settings: SearchSettings) -> dict:
    """PyVRP by itself for the same wall time; its routes read into the full model (what does not fit is
    unserved)."""
    started = time.perf_counter()
    built = build_model(problem, eligible_vehicles(problem))
    built.routing.CloseModelWithParameters(search_parameters(problem, settings))
    left = max(settings.time_limit_s - (time.perf_counter() - started), 0.1)
    seed = pyvrp_seed(built, replace(settings, deterministic=False), left)
    _, kept = read_seed(built, seed.routes)
    to_stop = built.layout.stop_of_node
    routes = [[to_stop[built.manager.IndexToNode(i)] for i in route] for route in kept]
    return {
        "distance": sum(route_distance(problem, v, r) for v, r in enumerate(routes)),
        "served": sum(map(len, routes)),
        "served_by_pyvrp": sum(map(len, seed.routes)),
        "feasible_in_pyvrp": seed.stats.get("seed_feasible"),
        "wall_s": round(time.perf_counter() - started, 2),
    }


def compare(recorded: list[tuple], min_stops: int) -> list[dict]:
    rows = []
    for code, problem, settings, solution in recorded:
        if len(problem.stops) < min_stops:
            continue
        row = {
            "kabupaten": code,
            "problem": problem.name,
            "stops": len(problem.stops),
            "vehicles": len(problem.vehicles),
            "classes": len(problem.vehicle_classes),
            "breaks": any(v.breaks for v in problem.vehicles),
            "chained_trips": any(v.follows is not None for v in problem.vehicles),
            "time_limit_s": settings.time_limit_s,
            "planner": _summary(solution),
        }
        for name, strategy in COMPARATORS.items():
            plain = replace(settings, first_solution=strategy, metaheuristic="guided-local-search")
            row[name] = _summary(solve(problem, plain))
        row["pyvrp"] = pyvrp_alone(problem, settings)
        rows.append(row)
        print(rows[-1], flush=True)
    return rows


def _versus(planner: dict, other: dict) -> str:
    if other["status"] == "no_solution" or (other["routes"] == 0 and other["unserved"]):
        return f"no routes ({other['unserved']} unserved)"
    delta = 100.0 * (planner["cost"] - other["cost"]) / other["cost"] if other["cost"] else 0.0
    return f"{other['cost'] / 1e9:,.2f} ({delta:+.1f} %), {other['unserved']} unserved"


def markdown(record: dict) -> str:
    lines = [
        f"Scenario `{record['scenario']}`, {record['time_limit_s']:g} s per kabupaten (split among its layers by "
        f"size), one process, kabupaten one after the other. {record['environment']['cpu']}, "
        f"{record['environment']['cores']} cores, load average at start "
        f"{record['environment']['load_average_at_start']}.",
        "",
        "| kabupaten | PPK | PPS | vehicles | trips | unserved | budget s | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in record["kabupaten"]:
        lines.append(
            f"| {t['kabupaten']} | {t['ppk']} | {t['pps']} | {t['vehicles']} | {t['trips']} | {t['unserved']} "
            f"| {t['budget_s']:.1f} | {t['wall_s']:.1f} |"
        )
    total = sum(t["wall_s"] for t in record["kabupaten"])
    budget = sum(t["budget_s"] for t in record["kabupaten"])
    lines += [f"| **all** | | | | | | **{budget:.0f}** | **{total:.0f}** |", ""]
    lines += [
        f"Every routing problem of at least {record.get('min_stops', 15)} stops that the dispatcher handed to the "
        "engine, solved again with plain OR-Tools on the same model and budget (guided local search from "
        "SAVINGS, and from PARALLEL_CHEAPEST_INSERTION). Routing cost in 10^9 of the dispatcher's cost unit "
        "(milli-rupiah), and the difference of the planner's cost to it; unserved stops are counted apart "
        "(they are deliveries the plan names as missed).",
        "",
        "| problem | stops | trip-vehicles | budget s | planner cost | planner unserved | planner seed "
        "| OR-Tools SAVINGS + GLS | OR-Tools PCI + GLS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in record["problems"]:
        p = row["planner"]
        lines.append(
            f"| {row['problem']} | {row['stops']} | {row['vehicles']} | {row['time_limit_s']:.1f} "
            f"| {p['cost'] / 1e9:,.2f} | {p['unserved']} | {p['seed_source']} "
            f"| {_versus(p, row['ortools-savings'])} | {_versus(p, row['ortools-pci'])} |"
        )
    if all("pyvrp" in row for row in record["problems"]):
        lines += ["", *pyvrp_table(record["problems"])]
    return "\n".join(lines) + "\n"


def pyvrp_table(problems: list[dict]) -> list[str]:
    """Distance against PyVRP alone on the PPK -> PPS problems (tier 2 from PPK)."""
    lines = [
        "PPK -> PPS problems: distance driven (km) by the planner and by PyVRP alone with the same wall time, "
        "PyVRP's routes read into the full model (night breaks, chained trips); the gap is compared only where "
        "both serve the same stops.",
        "",
        "| problem | stops | planner km | planner served | PyVRP km | PyVRP served (in PyVRP) | gap |",
        "|---|---|---|---|---|---|---|",
    ]
    gaps = []
    for row in problems:
        if "from PPK" not in row["problem"]:
            continue
        p, q = row["planner"], row["pyvrp"]
        served = row["stops"] - p["unserved"]
        gap = "-"
        if served == q["served"] and q["distance"]:
            value = 100.0 * (p["distance"] - q["distance"]) / q["distance"]
            gaps.append(value)
            gap = f"{value:+.1f} %"
        lines.append(
            f"| {row['problem']} | {row['stops']} | {p['distance'] / 1000:,.0f} | {served} "
            f"| {q['distance'] / 1000:,.0f} | {q['served']} ({q['served_by_pyvrp']}) | {gap} |"
        )
    if gaps:
        lines += [
            "",
            f"Mean gap of the planner to PyVRP: **{sum(gaps) / len(gaps):+.1f} %** over {len(gaps)} problems.",
        ]
    return lines


def render() -> None:
    record = json.loads(RESULTS.read_text())
    replace_section("kaltim-table", markdown(record), "Kaltim engine")
    print(f"updated {BENCHMARKS_MD}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "kaltim-2024.yaml")
    parser.add_argument("--time-limit", type=float, default=12.0, help="seconds per kabupaten")
    parser.add_argument("--min-stops", type=int, default=15, help="compare only problems at least this big")
    parser.add_argument("--kabupaten", nargs="*", help="only these kabupaten codes (default: all)")
    parser.add_argument("--save-problems", type=Path, help="also pickle the recorded problems to this file")
    parser.add_argument("--render", action="store_true", help="only rewrite BENCHMARKS.md from the results")
    args = parser.parse_args(argv)
    if args.render:
        render()
        return
    env = environment()
    timings, recorded = record_kabupaten(args.scenario, args.time_limit, args.kabupaten)
    if args.save_problems:
        with open(args.save_problems, "wb") as out:
            pickle.dump([(code, problem, settings) for code, problem, settings, _ in recorded], out)
        if args.kabupaten:
            return  # a partial run is for analysis only: keep the results file whole
    rows = compare(recorded, args.min_stops)
    write_json(
        RESULTS,
        {
            "scenario": str(
                args.scenario.relative_to(ROOT) if args.scenario.is_relative_to(ROOT) else args.scenario
            ),
            "time_limit_s": args.time_limit,
            "environment": env,
            "min_stops": args.min_stops,
            "kabupaten": timings,
            "problems": rows,
        },
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
