"""`make bench`: every benchmark behind BENCHMARKS.md, then its tables (about 45 minutes on 2 cores).

    .venv/bin/python -m bench.run_all [--quick]

--quick runs the VRPLIB sets at 10 s only and skips the 60 s CVRP run.
"""

from __future__ import annotations

import argparse

from bench import kaltim_engine, replan, vrplib_table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="skip the 60 s CVRP run")
    args = parser.parse_args(argv)
    vrplib_table.main(
        ["run", "--set", "cvrp", "vrptw", "mdvrptw", "--time-limit", "10", "--compare", "pyvrp", "ortools"]
        + ["--name", "all-10s"]
    )
    if not args.quick:
        vrplib_table.main(
            ["run", "--set", "cvrp", "--time-limit", "60", "--compare", "pyvrp", "--name", "cvrp-60s"]
        )
    kaltim_engine.main(["--time-limit", "12"])
    replan.main([])
    vrplib_table.main(["render"])
    kaltim_engine.main(["--render"])


if __name__ == "__main__":
    main()
