"""VRPLIB benchmark runs and the tables of BENCHMARKS.md.

    # run a set (writes bench/results/<name>.json as it goes)
    .venv/bin/python -m bench.vrplib_table run --set cvrp --time-limit 10 --compare pyvrp ortools --name cvrp-10s
    # rewrite the tables in BENCHMARKS.md from every results file
    .venv/bin/python -m bench.vrplib_table render

Instances come from ../shared/bench (override with --instances): CVRP = 8 X instances (100-1000 customers),
MDVRPTW = PR11A, PR13A, PR15A, PR17A, VRPTW = the two 1000-customer Gehring-Homberger instances. The planner
engine and each compared solver run one after the other with the same time limit, one process, one thread.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from planner.fileio import write_json, write_text
from planner.vrplib_bench import (
    ENGINE,
    PLAIN_ORTOOLS,
    PYVRP,
    BenchResult,
    environment,
    mean_gaps,
    run_benchmark,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INSTANCES = ROOT.parent / "shared" / "bench"
RESULTS = ROOT / "bench" / "results"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
SETS = {"cvrp": "CVRP", "vrptw": "VRPTW", "mdvrptw": "MDVRPTW"}
BEGIN, END = "<!-- vrplib-tables:begin -->", "<!-- vrplib-tables:end -->"
SOLVER_LABELS = {ENGINE: "planner", PYVRP: "PyVRP", PLAIN_ORTOOLS: "plain OR-Tools"}


def instance_files(instances: Path, family_set: str) -> list[Path]:
    def size(path: Path) -> tuple[int, str]:
        digits = re.findall(r"\d+", path.stem)
        return (int(digits[0]) if digits else 0, path.stem)

    return sorted((instances / SETS[family_set]).glob("*.vrp"), key=size)


def run(args: argparse.Namespace) -> None:
    files = [f for s in args.set for f in instance_files(args.instances, s)]
    if not files:
        raise SystemExit(f"no instances for {args.set} under {args.instances}")
    target = RESULTS / f"{args.name}.json"
    record = {
        "name": args.name,
        "time_limit_s": args.time_limit,
        "seed": args.seed,
        "solvers": [ENGINE, *args.compare],
        "environment": environment(),
        "command": f"python -m bench.vrplib_table run --set {' '.join(args.set)} --time-limit {args.time_limit:g} "
        f"--compare {' '.join(args.compare)} --name {args.name}",
        "results": [],
    }

    def keep(result: BenchResult) -> None:
        record["results"].append(result.as_dict())
        write_json(target, record)  # keep what is done if the run is stopped
        gap = "-" if result.gap_pct is None else f"{result.gap_pct:.2f} %"
        print(
            f"{result.instance:14} {result.solver:8} cost {result.cost} gap {gap} {result.runtime_s:.1f} s",
            flush=True,
        )

    run_benchmark(files, args.time_limit, args.compare, seed=args.seed, on_result=keep)
    print(f"wrote {target}")


def _results(record: dict) -> list[BenchResult]:
    return [BenchResult(**r) for r in record["results"]]


def _fmt(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def markdown_table(record: dict) -> str:
    results = _results(record)
    solvers = [s for s in record["solvers"] if any(r.solver == s for r in results)]
    by_instance: dict[str, dict[str, BenchResult]] = {}
    for r in results:
        by_instance.setdefault(r.instance, {})[r.solver] = r
    head = ["instance", "customers", "BKS"]
    for s in solvers:
        head += [f"{SOLVER_LABELS[s]} cost", f"{SOLVER_LABELS[s]} gap %", f"{SOLVER_LABELS[s]} s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in by_instance.items():
        first = next(iter(row.values()))
        cells = [name, str(first.customers), _fmt(first.bks, 1)]
        for s in solvers:
            r = row.get(s)
            cells += [_fmt(r.cost, 1), _fmt(r.gap_pct, 2), _fmt(r.runtime_s, 1)] if r else ["", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    gaps = mean_gaps(results)
    families = list(dict.fromkeys(r.family for r in results))
    for family in families:
        cells = [f"**mean {family}**", "", ""]
        for s in solvers:
            cells += ["", f"**{_fmt(gaps.get((family, s)), 2)}**", ""]
        lines.append("| " + " | ".join(cells) + " |")
    env = record["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    caption = (
        f"**{record['name']}**: {record['time_limit_s']:g} s per instance and solver, seed {record['seed']}. "
        f"{env['cpu']}, {env['cores']} cores, load average at start {env['load_average_at_start']}; "
        f"Python {env['python']}, {versions}.\n\n`{record['command']}`"
    )
    return caption + "\n\n" + "\n".join(lines) + "\n"


def render(args: argparse.Namespace) -> None:
    records = [json.loads(f.read_text()) for f in sorted(RESULTS.glob("*.json"))]
    records = sorted((r for r in records if "results" in r), key=lambda r: (r["time_limit_s"], r["name"]))
    tables = "\n".join(markdown_table(r) for r in records)
    if args.stdout:
        print(tables)
        return
    text = BENCHMARKS_MD.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{BENCHMARKS_MD} lacks the markers {BEGIN} ... {END}")
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    write_text(BENCHMARKS_MD, f"{before}{BEGIN}\n{tables}{END}{after}")
    print(f"updated {BENCHMARKS_MD} from {len(records)} VRPLIB result file(s)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run a benchmark set")
    run_parser.add_argument("--set", nargs="+", choices=sorted(SETS), default=["cvrp"])
    run_parser.add_argument("--time-limit", type=float, default=10.0)
    run_parser.add_argument("--compare", nargs="*", choices=[PYVRP, PLAIN_ORTOOLS], default=[PYVRP])
    run_parser.add_argument("--seed", type=int, default=0)
    run_parser.add_argument("--name", required=True, help="results file name, e.g. cvrp-10s")
    run_parser.add_argument("--instances", type=Path, default=DEFAULT_INSTANCES)
    run_parser.set_defaults(handler=run)
    render_parser = commands.add_parser("render", help="rewrite the tables in BENCHMARKS.md")
    render_parser.add_argument("--stdout", action="store_true", help="print the tables instead")
    render_parser.set_defaults(handler=render)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
