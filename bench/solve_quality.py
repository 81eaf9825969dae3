"""Quality of the default solve: its cost per kabupaten against a run with `--factor` times the time budget
(the clock and the stall limits, PyVRP iterations and OR-Tools solutions without a gain, all times `--factor`).

    .venv/bin/python -m bench.solve_quality [--scenario scenarios/kaltim-2024.yaml] [--factor 10]

Both runs are made side by side in one process, with the scenario's seed and workers: first the default budget,
then the longer one. Prints and records per kabupaten the cost (IDR), trips and unserved stops of each, and the
default's gap to the longer run; the issue's target is a gap within 1 % (a negative gap: the default is cheaper,
which a time-limited search can be). Writes bench/results/solve-quality.json; `--render` rewrites the table in
BENCHMARKS.md from it.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from bench.benchmarks_md import replace_section
from planner.fileio import write_json
from planner.vrplib_bench import environment

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "solve-quality.json"


def one_solve(scenario: Path, factor: float) -> dict:
    """The scenario solved with `factor` times its time budget: wall seconds and the KPIs per kabupaten."""
    from planner.execution import Backend
    from planner.pipeline import load_problem, make_plan, search_settings

    problem = load_problem(scenario)
    settings = search_settings(problem, problem.scenario.solver.time_limit_s * factor)
    # the stall limits are part of the budget: the longer run may go on `factor` times as long without a gain
    settings = replace(
        settings,
        stall_iterations=round(settings.stall_iterations * factor),
        stall_solutions=round(settings.stall_solutions * factor),
    )
    started = time.perf_counter()
    plan = make_plan(problem, settings, Backend(workers=problem.scenario.solver.workers))
    wall = time.perf_counter() - started
    assert plan.kpis is not None
    return {
        "time_limit_s": settings.time_limit_s,
        "stall": [settings.stall_iterations, settings.stall_solutions],
        "wall_s": round(wall, 1),
        "kabupaten": {
            code: {"cost_idr": k.cost_idr, "trips": k.trips, "unserved": k.unserved}
            for code, k in sorted(plan.kpis.kabupaten.items())
        },
        "cost_idr": plan.kpis.total.cost_idr,
        "unserved": plan.kpis.total.unserved,
    }


def gap_percent(default: int, longer: int) -> float:
    """How much dearer the default plan is than the longer run's, in percent of the longer run's cost."""
    return round(100.0 * (default - longer) / longer, 2) if longer else 0.0


def render(record: dict) -> str:
    default, longer, env = record["default"], record["longer"], record["environment"]
    lines = [
        f"Scenario `{record['scenario']}`: the default budget ({default['time_limit_s']} s per kabupaten on "
        f"average, {default['wall_s']} s wall, stall limits {default.get('stall')}) against {record['factor']}x "
        f"({longer['time_limit_s']} s, {longer['wall_s']} s wall, stall limits {longer.get('stall')}), one after "
        f"the other in one process; {env['cpu']}, {env['cores']} cores, "
        f"load average at start {env['load_average_at_start']}.",
        "",
        "| kabupaten | cost default (IDR) | cost longer (IDR) | gap | trips default / longer | unserved default / longer |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for code, d in default["kabupaten"].items():
        x = longer["kabupaten"].get(code, {"cost_idr": 0, "trips": 0, "unserved": 0})
        lines.append(
            f"| {code} | {d['cost_idr']:,} | {x['cost_idr']:,} | {gap_percent(d['cost_idr'], x['cost_idr']):+.2f} % "
            f"| {d['trips']} / {x['trips']} | {d['unserved']} / {x['unserved']} |"
        )
    lines.append(
        f"| **all** | {default['cost_idr']:,} | {longer['cost_idr']:,} "
        f"| {gap_percent(default['cost_idr'], longer['cost_idr']):+.2f} % | | {default['unserved']} / "
        f"{longer['unserved']} |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "kaltim-2024.yaml")
    parser.add_argument("--factor", type=float, default=10.0)
    parser.add_argument("--render", action="store_true", help="only rewrite the BENCHMARKS.md table")
    args = parser.parse_args(argv)
    if not args.render:
        environment_at_start = environment()
        default = one_solve(args.scenario, 1.0)
        print(json.dumps(default), flush=True)
        longer = one_solve(args.scenario, args.factor)
        print(json.dumps(longer), flush=True)
        record = {
            "scenario": str(args.scenario.resolve().relative_to(ROOT)),
            "factor": args.factor,
            "environment": environment_at_start,
            "default": default,
            "longer": longer,
        }
        write_json(RESULTS, record)
    record = json.loads(RESULTS.read_text())
    replace_section("solve-quality", render(record), "Quality of the default solve")


if __name__ == "__main__":
    main()
