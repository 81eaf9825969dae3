"""Re-plan speed: one blocked leg in one kabupaten against a full solve of the scenario, in the same process.

    .venv/bin/python -m bench.replan [--scenario scenarios/kaltim-2024.yaml] [--time-limit 15] [--workers 2]

1. Solves the whole scenario as `planner solve` does (same time limit per kabupaten, same workers) and times it.
2. For each kabupaten in KABUPATEN, blocks one leg that a trip leaving after 13:00 on the first day uses (the
   first road, river or sea leg of the first such trip, in vehicle order) and re-plans from 13:00 with the
   same settings; records the wall time, the ratio to the full solve, what was planned again and whether the
   new plan validates.

Writes bench/results/replan.json; `--render` rewrites the re-plan table in BENCHMARKS.md from it.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from pathlib import Path

from bench.benchmarks_md import replace_section
from planner.fileio import write_json
from planner.vrplib_bench import environment

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "replan.json"
KABUPATEN = ("64.11", "64.03", "64.72", "64.02")  # river, sea and islands, city, the largest
AFTER_START = timedelta(hours=7)


def run(scenario: Path, time_limit: float | None, workers: int | None) -> dict:
    from planner.execution import Backend
    from planner.pipeline import load_problem, make_plan, problem_of, search_settings
    from planner.replan import Change, apply_change, check_change, plan_diff, replan
    from planner.validate import validate_plan

    problem = load_problem(scenario)
    inputs = problem.inputs
    settings = search_settings(problem, time_limit)
    backend = Backend(workers=workers or problem.scenario.solver.workers)
    started = time.perf_counter()
    plan = make_plan(problem, settings, backend)
    full_s = time.perf_counter() - started
    at = plan.calendar.start + AFTER_START
    cases = []
    for code in KABUPATEN:
        waiting = sorted(
            (r for r in plan.routes if r.kabupaten_code == code and r.stops[0].departure > at),
            key=lambda r: (r.vehicle_id, r.trip),
        )
        leg = next(
            (leg for r in waiting for leg in r.legs if leg.startswith(("road:", "river:", "sea:"))), None
        )
        if leg is None:
            continue
        change = Change((leg,), (), at)
        check_change(plan, inputs.network, change)
        started = time.perf_counter()
        changed = problem_of(apply_change(inputs, plan, change))
        result = replan(plan, changed, change, settings, backend)
        replan_s = time.perf_counter() - started
        diff = plan_diff(plan, result.plan)
        cases.append(
            {
                "kabupaten": code,
                "leg": leg,
                "replan_s": round(replan_s, 2),
                "ratio": round(replan_s / full_s, 3),
                "replanned": list(result.replanned),
                "changed_stops": len(diff["changed_stops"]),
                "newly_unserved": len(diff["newly_unserved"]),
                "valid": validate_plan(result.plan, changed.expect, previous=plan, allow_unserved=True) == [],
            }
        )
        print(json.dumps(cases[-1]), flush=True)
    return {
        "scenario": str(scenario.relative_to(ROOT) if scenario.is_relative_to(ROOT) else scenario),
        "time_limit_s": settings.time_limit_s,
        "workers": workers,
        "at": at.isoformat(),
        "full_solve_s": round(full_s, 2),
        "cases": cases,
        "environment": environment(),
    }


def render(results: dict) -> str:
    lines = [
        f"Scenario `{results['scenario']}`, {results['time_limit_s']:g} s per kabupaten, "
        f"{results['workers']} workers; full solve **{results['full_solve_s']:.1f} s**. "
        f"Each case blocks one leg at {results['at'][:16].replace('T', ' ')}.",
        "",
        "| kabupaten | blocked leg | re-plan s | ratio to full solve | planned again | stops changed | newly unserved | valid |",
        "|---|---|---:|---:|---|---:|---:|---|",
    ]
    for c in results["cases"]:
        lines.append(
            f"| {c['kabupaten']} | `{c['leg']}` | {c['replan_s']:.1f} | {c['ratio']:.3f} | "
            f"{', '.join(c['replanned']) or '-'} | {c['changed_stops']} | {c['newly_unserved']} | "
            f"{'yes' if c['valid'] else 'NO'} |"
        )
    return "\n".join(lines)


def write_table(results: dict) -> None:
    replace_section("replan-table", render(results), "Re-plan after a blocked leg")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "kaltim-2024.yaml")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds per kabupaten")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--render", action="store_true", help="only rewrite the table in BENCHMARKS.md")
    args = parser.parse_args(argv)
    if not args.render:
        write_json(RESULTS, run(args.scenario.resolve(), args.time_limit, args.workers))
    write_table(json.loads(RESULTS.read_text(encoding="utf-8")))


if __name__ == "__main__":
    main()
