"""Capacity over time and the order book: deliveries are capped by capacity, the rest waits.

Orders above capacity join a backlog that is served first in later months; a share of the waiting
backlog cancels each month. Vectorised over draws.
"""

from __future__ import annotations

import numpy as np


def capacity_ramp(months_since_start: np.ndarray, ramp_months: np.ndarray) -> np.ndarray:
    """Fraction of full capacity reached `months_since_start` months after start of production (0 before):
    a linear ramp reaching 1 after `ramp_months`."""
    months = np.asarray(months_since_start, dtype=float)
    fraction = (months + 1.0) / np.maximum(np.asarray(ramp_months, dtype=float), 1.0)
    return np.where(months < 0, 0.0, np.clip(fraction, 0.0, 1.0))


def serve_orders(orders: np.ndarray, capacity: np.ndarray, backlog: np.ndarray,
                 cancellation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One month of the order book: (deliveries, backlog carried to next month), vehicles.

    Deliveries = min(backlog + orders, capacity); what is left waits, less the cancelled share.
    """
    waiting = backlog + orders
    deliveries = np.minimum(waiting, np.maximum(capacity, 0.0))
    return deliveries, (waiting - deliveries) * (1.0 - cancellation)
