"""Province-wide N-1: measured on a sample of the busiest legs, with 1 and 2 Dask workers, extrapolated (issue 17).

    .venv/bin/python -m bench.contingency_scaling [--scenario scenarios/kaltim-2024.yaml] [--sample 24]
    .venv/bin/python -m bench.contingency_scaling --render

Runs `planner contingency --legs used --limit SAMPLE` (incremental) on a Dask LocalCluster of 1 and of 2
workers (one thread each), each in a fresh output folder, and records the baseline wall, the wall of the
sampled cases and the seconds per case. From these: the estimated wall of all used legs on 1, 2, 16 and 64
workers, as serial part (baseline, input loading) + cases x seconds per case / workers. The busiest legs are
the sample, so the estimate errs on the slow side (busy legs drop more trips). Writes
bench/results/contingency-scaling.json; `--render` rewrites its table in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.benchmarks_md import replace_section
from planner.fileio import write_json
from planner.vrplib_bench import environment

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "contingency-scaling.json"
ESTIMATE_WORKERS = (1, 2, 16, 64)


def on_cluster(scenario: Path, sample: int, workers: int, out: Path) -> dict:
    from dask.distributed import LocalCluster

    from planner.contingency import ContingencyOptions, run_contingency
    from planner.execution import Backend

    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        started = time.perf_counter()
        options = ContingencyOptions(
            legs="used", limit=sample, backend=Backend(scheduler=cluster.scheduler_address)
        )
        result = run_contingency(scenario, out, options)
        wall = time.perf_counter() - started
    return {
        "workers": workers,
        "wall_s": round(wall, 1),
        "cases": result.replanned,
        "unused": result.unused,
        "seconds_per_case": round(statistics.mean(result.case_wall_s), 2) if result.case_wall_s else None,
    }


def used_legs(out: Path) -> int:
    baseline = json.loads((out / "cases" / "baseline.json").read_text(encoding="utf-8"))
    return len(
        {
            leg
            for k in baseline["kabupaten"].values()
            for leg in k["trips_on_leg"]
            if not leg.startswith("access:")
        }
    )


def run(scenario: Path, sample: int) -> dict:
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for workers in (1, 2):
            out = Path(folder) / f"w{workers}"
            started = time.perf_counter()
            record = on_cluster(scenario, sample, workers, out)
            record["used_legs"] = used_legs(out)
            runs.append(record)
            record["measured_s"] = round(time.perf_counter() - started, 1)
    one = runs[0]
    per_case = one["seconds_per_case"] or 0.0
    serial = max(one["wall_s"] - one["cases"] * per_case, 0.0)  # baseline, loading, writing
    estimate = {w: round((serial + one["used_legs"] * per_case / w) / 60, 1) for w in ESTIMATE_WORKERS}
    record = {
        "scenario": str(scenario.relative_to(ROOT) if scenario.is_relative_to(ROOT) else scenario),
        "sample": sample,
        "environment": {**environment(), "load_average": os.getloadavg()},
        "runs": runs,
        "serial_s": round(serial, 1),
        "estimated_minutes_all_used_legs": estimate,
    }
    write_json(RESULTS, record)
    return record


def render() -> None:
    record = json.loads(RESULTS.read_text(encoding="utf-8"))
    env = record["environment"]
    lines = [
        f"Scenario `{record['scenario']}`, `--legs used --limit {record['sample']}` (the busiest legs), incremental, "
        f"Dask LocalCluster; {env.get('cores', '?')} cores, load average at the start {env['load_average'][0]:.1f}.",
        "",
        "| workers | wall s (baseline + sample) | cases solved | s per case | legs used by the plan |",
        "|---:|---:|---:|---:|---:|",
        *(
            f"| {r['workers']} | {r['wall_s']} | {r['cases']} | {r['seconds_per_case']} | {r['used_legs']} |"
            for r in record["runs"]
        ),
        "",
        "Estimated wall for every used leg (serial part "
        f"{record['serial_s']} s + legs x s per case on 1 worker / workers), minutes: "
        + ", ".join(f"{w} workers {m}" for w, m in record["estimated_minutes_all_used_legs"].items())
        + ". An estimate from the sample, not a measurement of the whole run.",
    ]
    replace_section("contingency-scaling", "\n".join(lines), "Contingency: province-wide N-1, scaling")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "kaltim-2024.yaml")
    parser.add_argument("--sample", type=int, default=24)
    parser.add_argument("--render", action="store_true", help="only rewrite the BENCHMARKS.md table")
    args = parser.parse_args(argv)
    if not args.render:
        record = run(args.scenario.resolve(), args.sample)
        print(json.dumps({k: v for k, v in record.items() if k != "environment"}, indent=1))
    render()


if __name__ == "__main__":
    main()
