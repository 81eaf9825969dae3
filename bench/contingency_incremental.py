"""N-1 cases incremental vs from scratch, side by side in one run (issue 17).

    .venv/bin/python -m bench.contingency_incremental [--scenario scenarios/mahulu-river.yaml] [--limit 30]
    .venv/bin/python -m bench.contingency_incremental --render
    .venv/bin/python -m bench.contingency_incremental --scenario scenarios/kukar-2024.yaml --limit 10 --tag kukar

Runs `planner contingency --legs used` twice on the same scenario, one worker each, in this process: once
re-planning only the trips on the blocked leg (the default) and once planning the kabupaten again from scratch.
`--limit` takes the busiest legs only. Records seconds per case for both, the ratio, and whether the two
rankings agree (top 20 by leg, and the desa cut off per leg). Writes bench/results/contingency-incremental.json
(with `--tag T`: contingency-incremental-T.json and its own BENCHMARKS.md section); `--render` rewrites the
table in BENCHMARKS.md from it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from bench.benchmarks_md import replace_section
from planner.fileio import write_json
from planner.vrplib_bench import environment

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "contingency-incremental.json"


def results_path(tag: str = "") -> Path:
    return RESULTS.with_name(f"contingency-incremental-{tag}.json") if tag else RESULTS


TOP = 20


def one_method(scenario: Path, limit: int | None, incremental: bool, out: Path) -> dict:
    from planner.contingency import ContingencyOptions, run_contingency
    from planner.execution import Backend

    options = ContingencyOptions(
        legs="used", limit=limit, backend=Backend(workers=1), incremental=incremental
    )
    result = run_contingency(scenario, out, options)
    return {
        "method": "incremental" if incremental else "from_scratch",
        "wall_s": round(result.wall_s, 1),
        "cases_solved": result.replanned,
        "unused_legs": result.unused,
        "seconds_per_case": round(statistics.mean(result.case_wall_s), 2) if result.case_wall_s else None,
        "ranking": [r["leg_id"] for r in result.rows],
        "cut_off": {r["leg_id"]: r["unserved_pps"] for r in result.rows},
        "impact": {
            r["leg_id"]: {
                k: r[k] for k in ("newly_unserved_pps", "late_pps", "extra_vehicle_hours", "extra_km")
            }
            for r in result.rows
        },
    }


def run(scenario: Path, limit: int | None, tag: str = "") -> dict:
    with tempfile.TemporaryDirectory() as folder:
        incremental = one_method(scenario, limit, True, Path(folder) / "incremental")
        scratch = one_method(scenario, limit, False, Path(folder) / "scratch")
    differ = sorted(
        leg for leg in incremental["cut_off"] if incremental["cut_off"][leg] != scratch["cut_off"].get(leg)
    )
    record = {
        "scenario": str(scenario.relative_to(ROOT) if scenario.is_relative_to(ROOT) else scenario),
        "limit": limit,
        "environment": {**environment(), "load_average": os.getloadavg()},
        "incremental": incremental,
        "from_scratch": scratch,
        "speedup": round(scratch["seconds_per_case"] / incremental["seconds_per_case"], 2)
        if incremental["seconds_per_case"] and scratch["seconds_per_case"]
        else None,
        "rank_correlation": rank_correlation(incremental["ranking"], scratch["ranking"]),
        "top_identical": incremental["ranking"][:TOP] == scratch["ranking"][:TOP],
        "top_same_set": set(incremental["ranking"][:TOP]) == set(scratch["ranking"][:TOP]),
        "legs_cutting_off_other_desa": differ,
    }
    write_json(results_path(tag), record)
    return record


def rank_correlation(first: list[str], second: list[str]) -> float | None:
    """Spearman's rho between two rankings of the same legs (None for fewer than 3 legs)."""
    from scipy.stats import spearmanr

    if len(first) < 3 or set(first) != set(second):
        return None
    position = {leg: i for i, leg in enumerate(second)}
    return round(float(spearmanr(range(len(first)), [position[leg] for leg in first]).statistic), 2)


def impact_table(record: dict) -> list[str]:
    """Per leg of the incremental top TOP: cut-off and late PPS and extra vehicle-hours by both methods."""
    inc, scr = record["incremental"], record["from_scratch"]
    if "impact" not in inc:
        return []
    scratch_rank = {leg: i for i, leg in enumerate(scr["ranking"], start=1)}
    lines = [
        "",
        "| leg | rank inc. / scratch | cut-off PPS inc. / scratch | late PPS inc. / scratch "
        "| extra veh-h inc. / scratch |",
        "|---|---:|---:|---:|---:|",
    ]
    for rank, leg in enumerate(inc["ranking"][:TOP], start=1):
        a, b = inc["impact"][leg], scr["impact"].get(leg, {})
        lines.append(
            f"| `{leg}` | {rank} / {scratch_rank.get(leg, '-')} "
            f"| {a['newly_unserved_pps']} / {b.get('newly_unserved_pps', '-')} "
            f"| {a['late_pps']} / {b.get('late_pps', '-')} "
            f"| {a['extra_vehicle_hours']:+.1f} / {b.get('extra_vehicle_hours', float('nan')):+.1f} |"
        )
    return lines


def render(tag: str = "") -> None:
    record = json.loads(results_path(tag).read_text(encoding="utf-8"))
    inc, scr = record["incremental"], record["from_scratch"]
    env = record["environment"]
    lines = [
        f"Scenario `{record['scenario']}`, `--legs used`"
        + (f" (the {record['limit']} busiest legs)" if record["limit"] else "")
        + f", one worker; {env.get('cores', '?')} cores, load average at the start "
        + f"{env['load_average'][0]:.1f}.",
        "",
        "| method | cases solved | legs unused (no solve) | s per case | wall s |",
        "|---|---:|---:|---:|---:|",
        f"| incremental | {inc['cases_solved']} | {inc['unused_legs']} | {inc['seconds_per_case']} | {inc['wall_s']} |",
        f"| from scratch | {scr['cases_solved']} | {scr['unused_legs']} | {scr['seconds_per_case']} | {scr['wall_s']} |",
        "",
        f"Speed-up per case: {record['speedup']}x. Top {TOP} identical in order: {record['top_identical']}; "
        f"as a set: {record['top_same_set']}. Legs whose loss cuts off other desa in one method than in the "
        f"other: {', '.join(record['legs_cutting_off_other_desa']) or 'none'}."
        + (
            f" Rank correlation (Spearman) of the two orders: {record['rank_correlation']}."
            if record.get("rank_correlation") is not None
            else ""
        ),
        *impact_table(record),
    ]
    if tag:
        section, title = f"contingency-incremental-{tag}", f"Contingency: incremental N-1 cases ({tag})"
    else:
        section, title = "contingency-incremental", "Contingency: incremental N-1 cases"
    replace_section(section, "\n".join(lines), title)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "mahulu-river.yaml")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--tag", default="", help="results file and BENCHMARKS.md section of their own")
    parser.add_argument("--render", action="store_true", help="only rewrite the BENCHMARKS.md table")
    args = parser.parse_args(argv)
    if not args.render:
        record = run(args.scenario.resolve(), args.limit, args.tag)
        print(
            json.dumps(
                {k: v for k, v in record.items() if k not in ("incremental", "from_scratch")}, indent=1
            )
        )
    render(args.tag)


if __name__ == "__main__":
    main()
