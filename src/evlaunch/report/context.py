"""What report sections read: the scenario, the prepared model, the run's per-draw table and its summary.

Figures use the first `CHART_DRAWS` draws (a fixed, reproducible subset) so that reports of million-draw
runs stay small; tables use all draws.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from evlaunch.config.scenario import Scenario, quantities, uncertain_parameters
from evlaunch.simulation.simulate import Model

CHART_DRAWS = 20_000


@dataclass
class ReportContext:
    """What sections read: the scenario, the prepared model, per-draw data and the summary."""

    scenario: Scenario
    model: Model
    table: Any          # DrawTable-like: columns, to_numpy(columns, limit), stats(columns)
    summary: dict[str, Any]
    figures: int = 0

    @functools.cached_property
    def quantities(self) -> dict[str, Any]:
        """`config.scenario.quantities` of the scenario, walked once per report (sections only read it)."""
        return quantities(self.scenario)

    @functools.cached_property
    def uncertain(self) -> dict[str, Any]:
        """`config.scenario.uncertain_parameters` of the scenario, once per report."""
        return uncertain_parameters(self.scenario)

    def arrays(self, columns: list[str]) -> dict[str, np.ndarray]:
        """The first `CHART_DRAWS` draws of those `columns` the table has (absent ones are left out)."""
        present = [c for c in columns if c in self.table.columns]
        return self.table.to_numpy(present, limit=CHART_DRAWS)

    def figure(self, figure: go.Figure) -> str:
        """HTML of a figure; the first one carries plotly.js, later ones reuse it. Element ids are numbered
        (not plotly's random ones), so the same run gives the same report file."""
        self.figures += 1
        return pio.to_html(figure, full_html=False, include_plotlyjs=self.figures == 1,
                           config={"displaylogo": False, "responsive": True}, div_id=f"figure-{self.figures}")
