"""Uncertainty: distributions for scenario inputs, Monte Carlo execution in chunks, and the table of draws."""
