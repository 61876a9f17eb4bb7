"""The `evlaunch` command-line application object and its shared helpers."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

app = typer.Typer(
    name="evlaunch",
    help="Simulate a newcomer's electric-car launch in China: path, launch month, sales, money, uncertainty.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Off a terminal (pipes, CI, tests) print wide tables rather than wrapping them at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """Print an error for the user (no traceback) and exit with `code` (2 = bad input or usage)."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def is_terminal() -> bool:
    return sys.stderr.isatty()
