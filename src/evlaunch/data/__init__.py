"""Bundled sourced tables (copied from the project's data catalogue) and their loader."""

from evlaunch.data.loader import Table, load_table, numeric

__all__ = ["Table", "load_table", "numeric"]
