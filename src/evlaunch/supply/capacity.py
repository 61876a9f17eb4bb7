"""The plant and the order book, month by month, vectorised over draws.

**One ramp, counted once.** The reference class of new brands' ramp-ups (`entry.reference_class`) is fitted
to *deliveries*, which already hold whatever limited them, the plant as much as the buyers. It is therefore
used as the *joint delivery ramp*: the plant's output in its m-th production month is its installed
capacity times the class's plateau-relative ramp `ramp_fraction(m)`, and there is no separate capacity
ramp on top of it, nor an awareness ramp on the buyers' side (their awareness is a prior, constant from the
launch: `entry.launch_prior`). With the class brand's own plateau as capacity and orders that never bind,
deliveries are that brand's fitted ramp (tests/supply/test_capacity.py).

**Capacity that flexes.** A plant may build stock for a few months before the launch (on the same ramp),
delivered from the launch. The entrant may add one further phase or shift (`expansion_*` fields of a path):
the stated rule is to order it once the plant is *at capacity* (its month's output at least `binding_utilisation`
of the installed full-rate capacity, so not while the first phase is still on its delivery ramp) with a
backlog above `backlog_months` of that capacity, for `persistence_months` consecutive months; it produces
after its lead time and ramps linearly over the path's `ramp_months` (an experienced team adding a phase to a
running plant); its capex is spread over the lead time. A backlog during the ramp is the ramp itself, which
more capacity would not shorten.

**The order book.** Deliveries = min(backlog + orders, output + stock); what is left waits. A share of the
waiting backlog cancels each month, rising with the expected wait (backlog / the month's output, months):
`cancellation + per_month_waited x wait`, at most 1. Every month
orders = deliveries + cancellations + change in backlog.

**The demand rivals face.** An order placed into a queue of w months is delivered with probability about
(1 - rate(w))^w (`delivery_probability`): it survives each month's cancellation until its car comes. The
incumbents re-price against this deliverable share of the entrant's orders (`simulation.simulate`), not
against every order, since a cancelled buyer returns to the market.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evlaunch.entry.reference_class import ramp_fraction

MAX_WAIT_MONTHS = 120.0  # the expected wait when nothing is produced (cancellation then saturates)


def capacity_ramp(months_since_start: np.ndarray, ramp_months: np.ndarray) -> np.ndarray:
    """Fraction of full capacity reached `months_since_start` months after start of production (0 before):
    a linear ramp reaching 1 after `ramp_months` (an expansion phase's ramp)."""
    months = np.asarray(months_since_start, dtype=float)
    fraction = (months + 1.0) / np.maximum(np.asarray(ramp_months, dtype=float), 1.0)
    return np.where(months < 0, 0.0, np.clip(fraction, 0.0, 1.0))


@dataclass(frozen=True)
class Plant:
    """One path's plant, per draw [N]: installed capacity, the delivery ramp's shape and the expansion option.
    Months count from the scenario start; volumes per month."""

    capacity: np.ndarray          # installed monthly capacity of the first phase(s), vehicles/month
    launch: np.ndarray            # first month on sale (inf: never)
    prelaunch_months: np.ndarray  # months of stock building before the launch
    ramp_midpoint: np.ndarray     # the delivery ramp's midpoint, production months
    ramp_width: np.ndarray        # the delivery ramp's logistic width, months
    expansion: np.ndarray         # the next phase's monthly capacity (0: none)
    expansion_lead: np.ndarray    # months from the decision until it produces
    expansion_ramp: np.ndarray    # months it takes to reach full output (linear)
    backlog_months: np.ndarray    # expansion rule: at capacity with a backlog above this many months of it ...
    persistence_months: np.ndarray  # ... for this many consecutive months
    binding_utilisation: np.ndarray  # at capacity: output at least this share of installed full-rate capacity

    @property
    def production_start(self) -> np.ndarray:
        """First production month (the launch less the stock-building months)."""
        return self.launch - np.ceil(self.prelaunch_months)


@dataclass
class Book:
    """What carries from one month to the next: the order book, the stock and the expansion decision [N]."""

    backlog: np.ndarray           # orders waiting for a car
    stock: np.ndarray             # cars built before the launch, not yet delivered
    months_over: np.ndarray       # consecutive months the backlog has exceeded the rule's threshold
    expansion_decided: np.ndarray  # month the expansion was ordered (inf: not ordered)

    @classmethod
    def empty(cls, draws: int) -> Book:
        return cls(np.zeros(draws), np.zeros(draws), np.zeros(draws), np.full(draws, np.inf))


@dataclass(frozen=True)
class Month:
    """One month of the plant and the book [N], vehicles."""

    output: np.ndarray            # what the plant can build this month
    installed: np.ndarray         # full-rate capacity of the phases in production (not the ramp's output)
    at_capacity: np.ndarray       # bool: output at least `binding_utilisation` of `installed`
    deliveries: np.ndarray
    cancellations: np.ndarray
    backlog: np.ndarray           # waiting at the month's end
    expansion_ordered: np.ndarray  # bool: the expansion was ordered this month


def plant_output(plant: Plant, book: Book, t: int, shock_cut: np.ndarray | float = 0.0) -> np.ndarray:
    """What the plant can build in month t [N]: the installed capacity on the delivery ramp (month 1 = first
    production month) plus an ordered expansion on its own ramp, less the share lost to supply shocks."""
    first = ramp_fraction(t - plant.production_start + 1.0, plant.ramp_midpoint, plant.ramp_width)
    online = book.expansion_decided + plant.expansion_lead
    with np.errstate(invalid="ignore"):
        added = plant.expansion * capacity_ramp(np.where(np.isfinite(online), t - online, -1.0),
                                                plant.expansion_ramp)
    output = (plant.capacity * first + added) * (1.0 - np.asarray(shock_cut, dtype=float))
    return np.where(np.isfinite(plant.launch), np.maximum(output, 0.0), 0.0)


def installed_capacity(plant: Plant, book: Book, t: int) -> np.ndarray:
    """[N] full-rate monthly capacity of the phases producing in month t: the first phase from its first
    production month, an ordered expansion from the month it comes online (whatever their ramps reach)."""
    first = np.where(np.isfinite(plant.launch) & (t >= plant.production_start), plant.capacity, 0.0)
    online = book.expansion_decided + plant.expansion_lead
    return first + np.where(np.isfinite(online) & (t >= online), plant.expansion, 0.0)


def at_capacity(output: np.ndarray, installed: np.ndarray, binding_utilisation: np.ndarray) -> np.ndarray:
    """[N] bool: the plant makes at least `binding_utilisation` of its installed full-rate capacity (a plant
    on its ramp, or cut by a supply shock, is not at capacity)."""
    return (installed > 0) & (output >= binding_utilisation * installed)


def serve(orders: np.ndarray, output: np.ndarray, stock: np.ndarray, backlog: np.ndarray,
          cancellation: np.ndarray, per_month_waited: np.ndarray | float = 0.0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One month of the order book: (deliveries, cancellations, backlog carried, stock left) [N], vehicles.

    Deliveries = min(backlog + orders, output + stock), the month's output first; of what is left waiting
    the share `cancellation + per_month_waited x wait` (at most 1) cancels, wait = left / output months."""
    waiting = backlog + orders
    output = np.maximum(output, 0.0)
    deliveries = np.minimum(waiting, output + stock)
    stock_left = stock - np.maximum(deliveries - output, 0.0)
    left = waiting - deliveries
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        wait = np.where(left > 0, np.minimum(left / output, MAX_WAIT_MONTHS), 0.0)
    rate = np.clip(cancellation + np.asarray(per_month_waited, dtype=float) * wait, 0.0, 1.0)
    cancelled = left * rate
    return deliveries, cancelled, left - cancelled, stock_left


def delivery_probability(queue: np.ndarray, output: np.ndarray, stock: np.ndarray, cancellation: np.ndarray,
                         per_month_waited: np.ndarray | float = 0.0) -> np.ndarray:
    """[N] the probability that an order placed now is delivered rather than cancelled: (1 - rate)^wait, with
    wait = (queue - stock) / output months ahead of it (0 without a queue; MAX_WAIT_MONTHS when nothing is
    produced) and rate = `cancellation + per_month_waited x wait` (at most 1), as `serve` cancels. `queue`
    [N] orders waiting ahead (vehicles), `output` [N] the month's output, `stock` [N] cars in stock."""
    ahead = np.maximum(np.asarray(queue, dtype=float) - stock, 0.0)
    output = np.maximum(output, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        wait = np.where(ahead > 0, np.minimum(ahead / output, MAX_WAIT_MONTHS), 0.0)
    rate = np.clip(cancellation + np.asarray(per_month_waited, dtype=float) * wait, 0.0, 1.0)
    return (1.0 - rate) ** wait


def expansion_rule(plant: Plant, book: Book, t: int, backlog: np.ndarray, installed: np.ndarray,
                   binding: np.ndarray) -> np.ndarray:
    """Update the rule's count of months over the threshold and return [N] bool: the expansion is ordered in
    month t (at capacity, `binding`, with a backlog above `backlog_months` of the installed capacity, for
    `persistence_months` months running; an expansion exists and was not ordered yet)."""
    over = binding & (backlog > plant.backlog_months * installed)
    book.months_over = np.where(over, book.months_over + 1.0, 0.0)
    ordered = ((book.months_over >= np.ceil(plant.persistence_months)) & (plant.expansion > 0)
               & ~np.isfinite(book.expansion_decided))
    book.expansion_decided = np.where(ordered, float(t), book.expansion_decided)
    return ordered


def plant_month(plant: Plant, book: Book, t: int, orders: np.ndarray, cancellation: np.ndarray,
                per_month_waited: np.ndarray | float = 0.0, shock_cut: np.ndarray | float = 0.0) -> Month:
    """Month t of the plant and the order book (updates `book`): before the launch the output goes to stock;
    from the launch orders are served from the output and the stock; then the expansion rule."""
    output = plant_output(plant, book, t, shock_cut)
    installed = installed_capacity(plant, book, t)
    binding = at_capacity(output, installed, plant.binding_utilisation)
    before = t < plant.launch
    book.stock = book.stock + np.where(before, output, 0.0)
    selling = np.where(before, 0.0, output)
    deliveries, cancelled, book.backlog, book.stock = _serve_after_launch(book, orders, selling, before,
                                                                          cancellation, per_month_waited)
    ordered = expansion_rule(plant, book, t, book.backlog, installed, binding)
    return Month(output, installed, binding, deliveries, cancelled, book.backlog, ordered)


def _serve_after_launch(book: Book, orders: np.ndarray, selling: np.ndarray, before: np.ndarray,
                        cancellation: np.ndarray, per_month_waited: np.ndarray | float
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`serve` for the draws on sale; draws not yet launched keep their stock and deliver nothing."""
    available = np.where(before, 0.0, book.stock)
    deliveries, cancelled, backlog, stock_left = serve(orders, selling, available, book.backlog, cancellation,
                                                       per_month_waited)
    return deliveries, cancelled, backlog, np.where(before, book.stock, stock_left)


def run_plant(plant: Plant, orders: np.ndarray, cancellation: np.ndarray, per_month_waited: np.ndarray | float = 0.0
              ) -> list[Month]:
    """The months of a plant facing orders [N, H] (orders that do not depend on deliveries): for tests and
    studies of the order book alone."""
    book = Book.empty(orders.shape[0])
    return [plant_month(plant, book, t, orders[:, t], cancellation, per_month_waited) for t in range(orders.shape[1])]
