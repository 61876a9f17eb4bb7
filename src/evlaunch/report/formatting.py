"""How figures are written for people, in the report, the dashboard and the CLI: one formatter each.

Money is shown in billions of CNY ("bn CNY"), vehicles as whole units with thousands separators,
probabilities and shares as percentages, months as 'YYYY-MM' (or "never" for a launch that does not
happen). A missing or non-finite value is written as MISSING rather than "nan" or "inf".
"""

from __future__ import annotations

import math
import numbers
from typing import Any

MISSING = "–"
CNY_PER_BN = 1e9


def is_number(value: Any) -> bool:
    """True for a finite real number (Python or numpy; bools are not numbers here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def bn_cny(value: Any, digits: int = 1, *, sign: bool = False, suffix: str = "") -> str:
    """An amount in CNY written in billions: 15_412_000_000 -> '15.4' (digits after the point;
    `sign` adds '+' to positive numbers, `suffix` is appended, e.g. ' bn'); MISSING if not a number."""
    if not is_number(value):
        return MISSING
    return f"{value / CNY_PER_BN:{'+' if sign else ''},.{digits}f}{suffix}"


def units(value: Any) -> str:
    """A count of vehicles (or any quantity in units): 123456.7 -> '123,457'; MISSING if not a number."""
    return f"{value:,.0f}" if is_number(value) else MISSING


def percent(value: Any, digits: int = 0) -> str:
    """A probability or share (a fraction) as a percentage: 0.456 -> '46%' (digits=1: '45.6%')."""
    return f"{value:.{digits}%}" if is_number(value) else MISSING


def month(value: str | None) -> str:
    """A month label 'YYYY-MM' as is; None (the event never happens within the horizon) as 'never'."""
    return value or "never"
