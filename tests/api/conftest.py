"""Shared runs for the API tests: the reference scenario with few draws, recorded in a store of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "scenarios" / "xiaomi-2023.toml"
DRAWS = 60


@pytest.fixture(scope="session")
def api_store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("api-store") / "runs.duckdb"


@pytest.fixture(scope="session")
def base_run(tmp_path_factory, api_store):
    """The reference scenario, 60 draws in chunks of 25, kept in a directory and recorded in the store."""
    import evlaunch

    out = tmp_path_factory.mktemp("api-runs") / "base"
    return evlaunch.run(evlaunch.Scenario.load(REFERENCE), draws=DRAWS, seed=7, out=out, store=api_store,
                        chunk_size=25)
