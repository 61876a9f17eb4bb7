"""The errors evlaunch reports to users: each says what is wrong and what to change.

The CLI turns any of these into a message and exit code 2 (bad input) instead of a traceback.
"""


class EvlaunchError(Exception):
    """Base class: a problem the user can fix by changing an input."""


class ScenarioError(EvlaunchError):
    """A scenario file is unreadable or invalid: the message names the file, field, value and expectation."""


class DataError(EvlaunchError):
    """A data table is missing, malformed, unsourced, or dated after the scenario's as-of date."""


class RunError(EvlaunchError):
    """A run cannot start or resume as asked (e.g. --resume with a different scenario)."""


def naming_source(error: EvlaunchError, source: str | None) -> EvlaunchError:
    """The same error with the scenario file `source` in front of its message (unless it is there already)."""
    if source is None or str(error).startswith(str(source)):
        return error
    return type(error)(f"{source}: {error}")
