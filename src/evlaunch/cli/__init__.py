"""`evlaunch` command line: every command lives in a module of this package, registered on one app."""

from __future__ import annotations

import os
import sys

# Importing the command modules registers their commands on `app`.
from evlaunch.cli import (  # noqa: F401
    analysis_commands,
    backtest_commands,
    data_commands,
    export_commands,
    run_commands,
    serve_commands,
)
from evlaunch.cli.app import app, errors
from evlaunch.errors import EvlaunchError


def main() -> None:
    """Entry point: user errors become a message and exit code 2, never a traceback."""
    try:
        app()
    except EvlaunchError as error:
        errors.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as error:  # an internal bug: say so briefly; EVLAUNCH_DEBUG=1 shows the traceback
        if os.environ.get("EVLAUNCH_DEBUG"):
            raise
        errors.print(f"[bold red]internal error:[/] {type(error).__name__}: {error}\n"
                     "Please report it; run with EVLAUNCH_DEBUG=1 for the traceback.", highlight=False)
        sys.exit(1)
