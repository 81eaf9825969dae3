"""`planner replan`: a new plan from a moment on, after legs are blocked or opened again."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from planner.commands.options import DeterministicOption, TimeLimitOption, WorkersOption, holds_output
from planner.commands.solve import kabupaten_names, summary_table
from planner.errors import InputError
from planner.execution import Backend
from planner.fileio import stored_path, write_json
from planner.outputs import write_outputs
from planner.pipeline import Problem, load_problem, problem_of, search_settings
from planner.plan import Plan, ScenarioRef, file_hash, read_plan
from planner.replan import Change, ReplanResult, apply_change, changed_trips, check_change, plan_diff, replan
from planner.validate import Expectations, Previous, validate_plan

TOP_ROWS = 25


def _moment(text: str, timezone) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"--at {text!r} is not a date and time; write it like 2024-11-24T10:00+08:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone)


def check_past_fits(
    plan: Plan, expect: Expectations, at: datetime, plan_file: Path, scenario_file: Path
) -> None:
    """With --force-scenario: every trip begun before `at` must exist in the other scenario (its kabupaten,
    vehicle and legs), else InputError naming both files and the trips."""
    kabupaten, legs = set(expect.kabupaten_codes()), expect.network.legs.index
    problems = []
    for route in plan.routes:
        if route.stops[0].arrival >= at:
            continue
        label = f"{route.vehicle_id} trip {route.trip}"
        if route.kabupaten_code not in kabupaten:
            problems.append(f"{label}: kabupaten {route.kabupaten_code} is not in {scenario_file}")
        elif route.vehicle_id not in expect.vehicles:
            problems.append(f"{label}: vehicle {route.vehicle_id} is not in the fleet of {scenario_file}")
        elif missing := [leg for leg in route.legs if leg not in legs]:
            problems.append(f"{label}: leg {missing[0]} is not in the network of {scenario_file}")
    if problems:
        raise InputError(
            f"--force-scenario: the past of {plan_file} (trips begun before --at) does not fit {scenario_file}",
            problems=problems[:20],
        )


def diff_table(diff: dict) -> Table:
    table = Table(title="What the re-plan changed")
    for column in ("node", "name", "before", "after", "vehicles before", "vehicles after", "shift min"):
        table.add_column(column)
    for row in diff["changed_stops"][:TOP_ROWS]:
        table.add_row(
            escape(row["node_id"]),
            escape(row["name"]),
            row["old_arrival"][5:16].replace("T", " ") if row["old_arrival"] else "not served",
            row["new_arrival"][5:16].replace("T", " ") if row["new_arrival"] else "not served",
            escape(", ".join(row["old_vehicles"])),
            escape(", ".join(row["new_vehicles"])),
            str(row["shift_min"]) if row["shift_min"] is not None else "-",
        )
    more = len(diff["changed_stops"]) - TOP_ROWS
    if more > 0:
        table.caption = f"{more} more in diff.json"
    return table


@holds_output()
def replan_command(
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN", help="plan.json to re-plan")],
    block: Annotated[
        list[str] | None, typer.Option("--block", help="leg id to block (repeat for more)")
    ] = None,
    unblock: Annotated[
        list[str] | None, typer.Option("--unblock", help="leg id to open again (repeat for more)")
    ] = None,
    at: Annotated[
        str, typer.Option("--at", help="when the change happens, e.g. 2024-11-24T10:00+08:00")
    ] = "",
    out: Annotated[Path, typer.Option("--out", help="folder for the new plan, diff.json and maps")] = Path(
        "out/replan"
    ),
    scenario: Annotated[
        Path | None, typer.Option("--scenario", help="the plan's scenario file, if it has moved")
    ] = None,
    force_scenario: Annotated[
        bool,
        typer.Option(
            "--force-scenario",
            help="re-plan on --scenario although its hash is not the plan's (the past must still fit it)",
        ),
    ] = False,
    time_limit: TimeLimitOption = None,
    workers: WorkersOption = None,
    deterministic: DeterministicOption = False,
) -> None:
    """Keep everything before --at, re-route the vehicles under way and plan the rest around the blocked legs."""
    console = Console()
    started = time.perf_counter()
    if not block and not unblock:
        raise InputError("nothing to re-plan: give at least one --block or --unblock leg id")
    if not at:
        raise InputError("give the moment of the change with --at, e.g. --at 2024-11-24T10:00+08:00")
    plan = read_plan(plan_file)
    scenario_file = scenario or stored_path(plan_file, plan.scenario.path or "")
    before, other_scenario = _plan_problem(plan, plan_file, scenario_file, force_scenario)
    change = Change(tuple(block or ()), tuple(unblock or ()), _moment(at, plan.calendar.start.tzinfo))
    check_change(plan, before.inputs.network, change)
    if other_scenario is not None:
        check_past_fits(plan, before.expect, change.at, plan_file, scenario_file)
    after = problem_of(apply_change(before.inputs, plan, change))
    settings = search_settings(after, time_limit, True if deterministic else None)
    with console.status("Re-planning the kabupaten the change touches..."):
        result = replan(
            plan,
            after,
            change,
            settings,
            Backend(workers=workers or after.scenario.solver.workers),
            based_on=str(plan_file),
            based_on_hash=file_hash(plan_file),
            scenario=other_scenario,
        )
    new = result.plan
    names = after.inputs.network.nodes["name"].astype(str).to_dict()
    diff = plan_diff(plan, new, names)
    problems = validate_plan(
        new, before.expect, previous=Previous(plan, file_hash(plan_file)), allow_unserved=True
    )
    written = write_outputs(
        new,
        after.inputs,
        out,
        changed_trips(plan, new),
        lambda folder: [write_json(folder / "diff.json", diff)],
    )
    console.print(summary_table(new, kabupaten_names(after.inputs)))
    _print_changes(console, diff, result, names)
    console.print(
        f"Kabupaten planned again: {', '.join(result.replanned) or 'none'}. Wrote {len(written)} files to "
        f"[bold]{escape(str(out))}[/] in {time.perf_counter() - started:.0f} s.",
        highlight=False,
    )
    if problems:
        console.print(f"[bold red]The new plan fails validation ({len(problems)} problems):[/]")
        for p in problems[:50]:
            console.print(f"  {escape(p)}", highlight=False)
        raise typer.Exit(1)


def _plan_problem(
    plan: Plan, plan_file: Path, scenario_file: Path, force_scenario: bool
) -> tuple[Problem, ScenarioRef | None]:
    """The problem of the scenario to re-plan on, and its reference when it is not the plan's own
    (`--force-scenario`); InputError when the file is missing or another scenario without the flag."""
    if not scenario_file.is_file():
        raise InputError(
            f"the plan's scenario file {scenario_file} is not found: give it with --scenario",
            source=plan_file,
        )
    scenario_hash = file_hash(scenario_file)
    if scenario_hash != plan.scenario.hash and not force_scenario:
        raise InputError(
            f"the scenario {scenario_file} is not the one the plan {plan_file} was made for (its hash is "
            f"{scenario_hash}, the plan's scenario.hash {plan.scenario.hash}): give the plan's scenario, or "
            "--force-scenario to re-plan on this one anyway"
        )
    problem = load_problem(scenario_file)
    if scenario_hash == plan.scenario.hash:
        return problem, None
    source = problem.scenario.source
    return problem, ScenarioRef(
        name=problem.scenario.name, hash=scenario_hash, path=str(source or scenario_file)
    )


def _print_changes(console: Console, diff: dict, result: ReplanResult, names: dict[str, str]) -> None:
    """The diff table, km added, newly unserved, served again, stranded and re-routed trips."""
    console.print(diff_table(diff))
    km = ", ".join(f"{mode} {value:+,.1f}" for mode, value in diff["km_added_by_mode"].items() if value)
    console.print(f"km added per mode: {km or 'none'}", highlight=False)
    for row in diff["newly_unserved"]:
        console.print(
            f"  [bold red]now unserved[/] {escape(row['node_id'])} {escape(row['name'])}: "
            f"{row['reason']} ({escape(row['detail'])})",
            highlight=False,
        )
    for node in diff["served_again"]:
        console.print(
            f"  [green]served again[/] {escape(node)} {escape(names.get(node, ''))}", highlight=False
        )
    for row in diff["stranded"]:
        console.print(
            f"  [bold red]stranded[/] {escape(row['vehicle_id'])} trip {row['trip']} at {escape(row['at'])}: "
            f"no open leg leads back to {escape(row['base'])}",
            highlight=False,
        )
    for cont in result.continued:
        if cont.skipped and not cont.stranded:
            console.print(
                f"  {escape(cont.route.vehicle_id)} trip {cont.route.trip} takes back the goods for "
                f"{escape(', '.join(s.node_id for s in cont.skipped))}",
                highlight=False,
            )
    rerouted = sum(1 for c in result.continued if c.rerouted)
    console.print(f"{rerouted} trip(s) under way re-routed.", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("replan")(replan_command)
