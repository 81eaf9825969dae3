"""`planner validate`: re-check a plan (and the plans a re-plan is based on) against its scenario, solver-free."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from planner.plan import Plan, content_hash, file_hash, read_plan, to_json
from planner.scenario import load_inputs, load_scenario
from planner.validate import Expectations, Previous, expectations, validate_plan

MAX_CHAIN = 10  # re-plans of re-plans checked back to the first plan, at most this many


def _matches(path: Path, wanted: str) -> bool:
    return file_hash(path) == wanted or content_hash(to_json(read_plan(path))) == wanted


def find_previous(plan: Plan, plan_file: Path, given: Path | None = None) -> Path | None:
    """The file of the plan a re-plan is based on: `given`, else `replan.based_on` as written, or next to
    the plan (its folder and the folder above); the first whose hash is `replan.based_on_hash`, else the first
    that exists (the validator then reports the wrong hash). None if the plan is no re-plan or none exists."""
    if given is not None:
        return given
    if plan.replan is None or not plan.replan.based_on:
        return None
    based_on = Path(plan.replan.based_on)
    candidates = [based_on] if based_on.is_absolute() else [plan_file.parent / based_on, based_on]
    candidates = [Path(os.path.normpath(c)) for c in candidates]
    candidates += [plan_file.parent / based_on.name, plan_file.parent.parent / based_on.name]
    existing = [c for c in dict.fromkeys(candidates) if c.is_file() and c.resolve() != plan_file.resolve()]
    matching = [c for c in existing if _matches(c, plan.replan.based_on_hash)]
    return (matching or existing or [None])[0]


def check_plan_file(
    plan_file: Path,
    expect: Expectations,
    previous_file: Path | None = None,
    allow_unserved: bool = False,
    depth: int = 0,
) -> tuple[Plan, Path | None, list[str]]:
    """(plan, file of its previous plan, violations). The previous plan of a re-plan is checked too, against
    the same scenario (unless the re-plan changed the scenario), back to the first plan."""
    plan = read_plan(plan_file)
    found = find_previous(plan, plan_file, previous_file)
    if found is None:
        return plan, None, validate_plan(plan, expect, allow_unserved=allow_unserved)
    old = read_plan(found)
    problems = []
    if old.scenario.hash == plan.scenario.hash and depth < MAX_CHAIN:
        _, _, earlier = check_plan_file(found, expect, None, allow_unserved, depth + 1)
        problems += [f"previous plan {found}: {p}" for p in earlier]
    previous = Previous(old, file_hash(found))
    return (
        plan,
        found,
        problems + validate_plan(plan, expect, previous=previous, allow_unserved=allow_unserved),
    )


def validate(
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN", help="plan.json")],
    scenario: Annotated[Path, typer.Argument(help="the scenario the plan was made for")],
    previous: Annotated[
        Path | None,
        typer.Option(
            "--previous",
            metavar="PLAN",
            help="for a re-plan: the plan it is based on (default: replan.based_on, or found next to it)",
        ),
    ] = None,
    allow_unserved: Annotated[
        bool,
        typer.Option(
            "--allow-unserved",
            help="accept unserved stops as listed (default: only stops no vehicle can reach and come back from)",
        ),
    ] = False,
) -> None:
    """Re-check a plan against the network, fleet and demand; exit 1 with the list of violations."""
    console = Console()
    expect = expectations(load_inputs(load_scenario(scenario)))
    plan, found, problems = check_plan_file(plan_file, expect, previous, allow_unserved)
    if problems:
        console.print(f"[bold red]{len(problems)} violation(s) in {escape(str(plan_file))}:[/]")
        for p in problems:
            console.print(f"  {escape(p)}", highlight=False)
        raise typer.Exit(1)
    served = sum(1 for r in plan.routes for s in r.stops if s.deliver)
    console.print(
        f"{escape(str(plan_file))} is valid: {len(plan.routes)} trips, {served} deliveries, "
        f"{len(plan.unserved)} unserved (each with its reason).",
        soft_wrap=True,
    )
    if plan.replan and found:
        record = plan.replan
        console.print(
            f"Re-plan of {escape(str(found))} (hash checked) at {record.at.isoformat()}: blocked "
            f"{escape(', '.join(record.blocked) or 'none')}; opened again {escape(', '.join(record.unblocked) or 'none')}.",
            soft_wrap=True,
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
