"""Reliability of the default solve: the whole scenario solved N times as `planner solve` does it.

    .venv/bin/python -m bench.solve_runs [--scenario scenarios/kaltim-2024.yaml] [--runs 10] [--seed-step 1]

Each run uses the scenario's own settings (time limit, workers), with the seed moved by `--seed-step` per run so
that the runs differ as runs on different days do. Prints and records per run: wall seconds, crashed or not
(an exception out of the solve, or a kabupaten the planner failed on), unserved stops, validation problems and
cost; then runs, crashes, runs with unserved stops, and wall min / median / max.

Writes bench/results/solve-runs.json; `--render` rewrites the table in BENCHMARKS.md from it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import traceback
from dataclasses import replace
from pathlib import Path

from bench.benchmarks_md import replace_section
from planner.fileio import write_json
from planner.vrplib_bench import environment

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "solve-runs.json"


def one_run(scenario: Path, seed: int) -> dict:
    from planner.execution import Backend
    from planner.pipeline import load_problem, make_plan, search_settings
    from planner.validate import validate_plan

    problem = load_problem(scenario)
    expect = problem.expect
    settings = replace(search_settings(problem, None), seed=seed)
    started = time.perf_counter()
    try:
        plan = make_plan(problem, settings, Backend(workers=problem.scenario.solver.workers))
    except Exception as err:  # noqa: BLE001 - a crash is what this bench counts
        return {
            "seed": seed,
            "wall_s": round(time.perf_counter() - started, 1),
            "crashed": True,
            "error": "".join(traceback.format_exception_only(err)).strip(),
        }
    wall = time.perf_counter() - started
    return {
        "seed": seed,
        "wall_s": round(wall, 1),
        "crashed": bool(plan.failed_kabupaten),
        "failed_kabupaten": plan.failed_kabupaten,
        "unserved": len(plan.unserved),
        "unserved_stops": [f"{u.node_id} {u.reason}" for u in plan.unserved][:20],
        "problems": len(validate_plan(plan, expect)),
        "cost_idr": plan.kpis.total.cost_idr if plan.kpis else None,
        "trips": len(plan.routes),
    }


def summary(runs: list[dict]) -> dict:
    walls = [r["wall_s"] for r in runs]
    return {
        "runs": len(runs),
        "crashes": sum(r["crashed"] for r in runs),
        "runs_with_unserved": sum(bool(r.get("unserved")) for r in runs),
        "invalid": sum(bool(r.get("problems")) for r in runs),
        "wall_min_s": min(walls),
        "wall_median_s": statistics.median(walls),
        "wall_max_s": max(walls),
    }


def render(record: dict) -> str:
    s, env = record["summary"], record["environment"]
    lines = [
        f"Scenario `{record['scenario']}`, {s['runs']} runs, seeds {record['runs'][0]['seed']}..."
        f"{record['runs'][-1]['seed']}; {env['cpu']}, {env['cores']} cores, load average at start "
        f"{env['load_average_at_start']}, OR-Tools {env['versions']['ortools']}.",
        "",
        "| runs | crashes | runs with unserved | invalid | wall min (s) | median | max |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {s['runs']} | {s['crashes']} | {s['runs_with_unserved']} | {s['invalid']} | {s['wall_min_s']} "
        f"| {s['wall_median_s']} | {s['wall_max_s']} |",
        "",
        "| seed | wall (s) | crashed | unserved | problems | trips | cost (IDR) |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in record["runs"]:
        lines.append(
            f"| {r['seed']} | {r['wall_s']} | {'yes' if r['crashed'] else 'no'} | {r.get('unserved', '-')} "
            f"| {r.get('problems', '-')} | {r.get('trips', '-')} | {r.get('cost_idr') or '-'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "kaltim-2024.yaml")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed-step", type=int, default=1)
    parser.add_argument("--render", action="store_true", help="only rewrite the BENCHMARKS.md table")
    args = parser.parse_args(argv)
    if not args.render:
        runs = []
        for k in range(args.runs):
            runs.append(one_run(args.scenario, k * args.seed_step))
            print(json.dumps(runs[-1]), flush=True)
        record = {
            "scenario": str(args.scenario.resolve().relative_to(ROOT)),
            "environment": environment(),
            "runs": runs,
            "summary": summary(runs),
        }
        write_json(RESULTS, record)
        print(json.dumps(record["summary"]))
    record = json.loads(RESULTS.read_text())
    replace_section("solve-runs", render(record), "Reliability of the default solve")


if __name__ == "__main__":
    main()
