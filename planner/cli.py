"""The `planner` command. Each area registers its commands from planner/commands/<area>.py."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

from planner.errors import InputError

COMMAND_MODULES = ("network", "demand", "scenario", "solve", "validate", "maps", "replan", "batch", "bench")


def build_app() -> typer.Typer:
    app = typer.Typer(
        help="KPU election logistics planner: network, demand, solve, validate, maps and reports.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    for name in COMMAND_MODULES:
        importlib.import_module(f"planner.commands.{name}").register(app)
    return app


def main(argv: list[str] | None = None) -> None:
    app = build_app()
    try:
        app(args=argv, prog_name="planner")
    except InputError as err:
        Console(stderr=True, emoji=False).print(
            f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
