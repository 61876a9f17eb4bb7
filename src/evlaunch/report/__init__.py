"""The self-contained HTML report of a run (plotly charts with the JS embedded: opens offline)."""
