"""Shared fixtures: the reference scenario, a small prepared model and a CLI runner that goes through
`evlaunch.cli.main` (so exit codes and error messages are exactly what users see)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (CI must not turn red on a new random example);
# HYPOTHESIS_PROFILE=explore searches new ones locally.
settings.register_profile("deterministic", derandomize=True, print_blob=True)
settings.register_profile("explore", max_examples=500, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "scenarios" / "xiaomi-2023.toml"


@pytest.fixture(scope="session")
def reference_path() -> Path:
    return REFERENCE


@pytest.fixture(scope="session")
def reference_text() -> str:
    return REFERENCE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def reference_model():
    from evlaunch.config.scenario import load_scenario
    from evlaunch.simulation.simulate import prepare

    return prepare(load_scenario(REFERENCE), REFERENCE.parent)


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `evlaunch ARGS...` in-process; returns (exit_code, stdout, stderr)."""
    from evlaunch.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["evlaunch", *map(str, args)])
        monkeypatch.setenv("COLUMNS", "200")
        code = 0
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke
