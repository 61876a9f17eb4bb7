"""What the market and supply kernels may know of a scenario: the scenario itself and the sourced data
as of its date (history, base lineup, policy schedule). The simulation's `Model` holds one of these;
market code never sees the simulation."""

from __future__ import annotations

from dataclasses import dataclass

from evlaunch.config.scenario import Scenario, month_number
from evlaunch.market.history import MarketHistory
from evlaunch.market.lineup import Lineup
from evlaunch.market.policy import PolicySchedule


@dataclass(frozen=True)
class MarketData:
    """A scenario joined with the market data it may see (nothing dated after its as-of date)."""

    scenario: Scenario
    history: MarketHistory      # monthly totals, seasonality, pack prices, charging points
    lineup: Lineup              # the base-period lineup (prices, sales, characteristics)
    policy: PolicySchedule      # policy_schedule as known on the as-of date (market.policy)

    @property
    def base_mid_month(self) -> float:
        """The middle of the base period, months since year 0 (a half month when it has an even length)."""
        first, last = self.scenario.market.base_period
        return (month_number(first) + month_number(last)) / 2.0

    @property
    def competitor_names(self) -> tuple[str, ...]:
        """The scheduled competitor launches, in the scenario's order."""
        return tuple(c.name for c in self.scenario.competition.launches)
