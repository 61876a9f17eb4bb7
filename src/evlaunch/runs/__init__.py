"""Runs: the runner, chunk execution, the run directory, the draw table, the summary and the run store."""
