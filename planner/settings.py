"""Search settings as plain data: what a scenario or the CLI may tune, checked without importing a solver.

planner.search maps the names to OR-Tools enums; planner.scenario and planner validate only need the names.
"""

from __future__ import annotations

from dataclasses import dataclass

PYVRP_SEED = "pyvrp-seed"
# OR-Tools FirstSolutionStrategy and LocalSearchMetaheuristic values, in kebab case
FIRST_SOLUTION_NAMES = (
    "savings",
    "parallel-savings",
    "parallel-cheapest-insertion",
    "local-cheapest-insertion",
    "global-cheapest-arc",
    "path-cheapest-arc",
    "christofides",
    "sweep",
    "automatic",
)
METAHEURISTIC_NAMES = (
    "guided-local-search",
    "simulated-annealing",
    "tabu-search",
    "greedy-descent",
    "automatic",
)
FIRST_SOLUTIONS = (PYVRP_SEED, *FIRST_SOLUTION_NAMES)


@dataclass(frozen=True)
class SearchSettings:
    """How to search. The defaults are the ones measured in BENCHMARKS.md and used for Kaltim plans.

    first_solution: "pyvrp-seed" or an OR-Tools first-solution strategy (see FIRST_SOLUTIONS).
    fallback_first_solution: the OR-Tools strategy used when there is no readable seed; "auto" picks
        savings for problems without time constraints and parallel cheapest insertion otherwise.
    seed_share: share of the time (after building the model) given to PyVRP.
    seed_iterations, solution_limit: the deterministic-mode budgets of PyVRP and OR-Tools.
    stall_iterations: PyVRP stops after this many iterations without a better solution (0: only the clock).
    stall_solutions: OR-Tools stops after this many solutions without a better one (0: only the clock). Both
        count work, not time, so they keep deterministic mode deterministic. Off by default (the VRPLIB
        benchmarks measure the engine at a fixed time); plans use PLAN_STALL (planner.pipeline).
    """

    time_limit_s: float = 10.0
    seed: int = 0
    deterministic: bool = False
    first_solution: str = PYVRP_SEED
    fallback_first_solution: str = "auto"
    metaheuristic: str = "guided-local-search"
    seed_share: float = 0.8
    seed_iterations: int = 5_000
    solution_limit: int = 300
    stall_iterations: int = 0
    stall_solutions: int = 0
    log: bool = False

    def __post_init__(self) -> None:
        if self.time_limit_s <= 0:
            raise ValueError("time_limit_s must be positive")
        if self.first_solution not in FIRST_SOLUTIONS:
            raise ValueError(f"first_solution {self.first_solution!r} is not one of {FIRST_SOLUTIONS}")
        if (
            self.fallback_first_solution != "auto"
            and self.fallback_first_solution not in FIRST_SOLUTION_NAMES
        ):
            raise ValueError(f"fallback_first_solution {self.fallback_first_solution!r} is unknown")
        if self.metaheuristic not in METAHEURISTIC_NAMES:
            raise ValueError(f"metaheuristic {self.metaheuristic!r} is not one of {METAHEURISTIC_NAMES}")
        if not 0 <= self.seed_share < 1:
            raise ValueError("seed_share must be in [0, 1)")
        if self.seed_iterations < 0 or self.solution_limit < 1:
            raise ValueError("seed_iterations must be >= 0 and solution_limit >= 1")
        if self.stall_iterations < 0 or self.stall_solutions < 0:
            raise ValueError("stall_iterations and stall_solutions must be >= 0")
