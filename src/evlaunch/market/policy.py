"""Purchase policy by date: the vehicle purchase tax and its NEV exemption, and the central subsidy.

Encodes `policy_timeline.csv` (national rows) as functions of price, powertrain and month:
- purchase tax 10% of the price net of VAT (exemption rows 2014-09-01, 2017-12, 2020-04-22, 2022-09-26);
- NEVs exempt to 2023-12-31; 2024-2025 exempt up to CNY 30,000; 2026-2027 halved, relief up to
  CNY 15,000 (row 2023-06-21); after 2027 no rule is known: full tax (an assumption, stated in reports);
- central purchase subsidy (paid to the maker, passed to the buyer) ended 2022-12-31.
Only rules public at the scenario's as-of date may be applied: `PolicyRules.as_of` filters them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

PURCHASE_TAX_RATE = 0.10  # of the price net of VAT (policy_timeline 2014-09-01: "10% vehicle purchase tax")


@dataclass(frozen=True)
class ExemptionStep:
    """From `start_month` (months since year 0), NEVs get `relief_fraction` of the tax waived, up to `cap` CNY."""

    start_month: int
    relief_fraction: float
    cap: float
    announced: date


# The NEV purchase-tax relief as announced (policy_timeline.csv rows with instrument 'purchase-tax exemption').
EXEMPTION_STEPS = (
    ExemptionStep(2014 * 12 + 8, 1.0, np.inf, date(2014, 9, 1)),
    ExemptionStep(2024 * 12 + 0, 1.0, 30_000.0, date(2023, 6, 21)),
    ExemptionStep(2026 * 12 + 0, 0.5, 15_000.0, date(2023, 6, 21)),
    ExemptionStep(2028 * 12 + 0, 0.0, 0.0, date(2023, 6, 21)),
)


def purchase_tax(price: np.ndarray, is_nev: np.ndarray, month: int, vat_rate: np.ndarray,
                 as_of: date) -> np.ndarray:
    """Purchase tax a buyer pays in `month` (months since year 0), CNY, for guide prices incl. VAT.

    Uses the latest exemption step that starts by `month` among those announced by `as_of`; a step not
    yet announced at the as-of date is unknown to the scenario, so the previous rule is assumed to go on.
    """
    price = np.asarray(price, dtype=float)
    tax = PURCHASE_TAX_RATE * price / (1.0 + np.asarray(vat_rate, dtype=float)[..., None])
    known = [step for step in EXEMPTION_STEPS if step.announced <= as_of and step.start_month <= month]
    if not known:
        return tax
    step = known[-1]
    relief = np.minimum(step.relief_fraction * tax, step.cap)
    return np.where(is_nev, tax - relief, tax)
