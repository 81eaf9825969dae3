"""The `planner` command. Each area registers its commands from planner/commands/<area>.py."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

from planner.errors import InputError

COMMAND_MODULES = (
    "network",
    "demand",
    "scenario",
    "solve",
    "validate",
    "maps",
    "report",
    "replan",
    "batch",
    "bench",
)


SOLVER_FREE = ("validate",)  # commands (and their module) that run without importing OR-Tools or PyVRP


def build_app(modules: tuple[str, ...] = COMMAND_MODULES) -> typer.Typer:
    """The `planner` app with the commands of `modules` (planner/commands/<name>.py)."""
    app = typer.Typer(
        help="KPU election logistics planner: network, demand, solve, validate, maps and reports.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(lambda: None)  # a group even with one command: `planner validate ...` keeps its name
    for name in modules:
        importlib.import_module(f"planner.commands.{name}").register(app)
    return app


def main(argv: list[str] | None = None) -> None:
    """Run `planner ARGV` (default: the command line); a user mistake (InputError) prints one line, exit 2."""
    args = sys.argv[1:] if argv is None else argv
    app = build_app((args[0],) if args and args[0] in SOLVER_FREE else COMMAND_MODULES)
    try:
        app(args=argv, prog_name="planner")
    except InputError as err:
        Console(stderr=True, emoji=False).print(
            f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
