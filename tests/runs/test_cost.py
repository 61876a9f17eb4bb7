"""The cost estimate: how it scales, when a run needs --yes, and that `validate`/`run` tell it before spending it."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from evlaunch.runs.cost import (
    MAX_SECONDS_WITHOUT_CONFIRMATION,
    REFERENCE,
    dimensions,
    estimate,
    estimate_from_dimensions,
)

ROOT = Path(__file__).resolve().parents[2]


def _benchmark():
    spec = importlib.util.spec_from_file_location("bench_cost_growth", ROOT / "benchmarks" / "bench_cost_growth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cost(draws=2000, chunk_size=500, workers=None, **dims):
    sizes = REFERENCE.as_dict() | dims
    return estimate_from_dimensions(**sizes, draws=draws, chunk_size=chunk_size, workers=workers)


def test_the_estimate_grows_with_draws_and_every_dimension_and_shrinks_with_workers():
    base = cost()
    assert cost(draws=4000).seconds == pytest.approx(2 * base.seconds)
    for name in ("paths", "products", "types", "regions", "months"):
        bigger = cost(**{name: 4 * getattr(REFERENCE, name)})
        assert bigger.seconds >= base.seconds and bigger.memory_bytes >= base.memory_bytes, name
        assert (bigger.seconds, bigger.memory_bytes) != (base.seconds, base.memory_bytes), name
    assert cost(workers=2).seconds == pytest.approx(base.seconds / 2)
    assert cost(chunk_size=5000, draws=5000).memory_bytes > cost(chunk_size=500, draws=5000).memory_bytes


def test_big_runs_need_confirmation_and_the_reference_run_does_not():
    assert not cost().needs_confirmation
    assert cost(draws=2_000_000).needs_confirmation  # hours
    long = cost(draws=2_000_000)
    assert long.seconds > MAX_SECONDS_WITHOUT_CONFIRMATION and " h " in long.describe()
    assert cost(draws=200_000, chunk_size=200_000, workers=8).needs_confirmation  # memory: one huge chunk per worker
    assert "4 paths x 24 products x 8 consumer types x 2 regions x 62 months" in cost().describe()


def test_dimensions_of_the_reference_model(reference_model):
    dims = dimensions(reference_model)
    assert (dims.paths, dims.types, dims.regions, dims.months) == (7, 16, 2, 62)
    launches = len(reference_model.scenario.competition.launches)
    assert dims.products == len(reference_model.lineup.names) + launches + 1  # the scheduled launches and the entrant
    assert estimate(reference_model, 2000, 500).seconds < MAX_SECONDS_WITHOUT_CONFIRMATION


@pytest.fixture(scope="module")
def limits_path(tmp_path_factory, reference_text):
    path = tmp_path_factory.mktemp("limits") / "limits.toml"
    path.write_text(_benchmark().at_schema_limits(reference_text), encoding="utf-8")
    return path


def test_validate_at_every_schema_limit_tells_the_cost_instead_of_spending_minutes(limits_path, cli):
    """Reproducer: such a scenario took 170 s and 720 MB to validate, without a word on the cost."""
    started = time.monotonic()
    code, out, err = cli("validate", limits_path)
    elapsed = time.monotonic() - started
    text = " ".join(out.split())
    assert code == 0, err
    assert "12 paths x 76 products x 64 consumer types x 8 regions x 240 months" in text
    assert "valid" in text and "sample simulation skipped" in text and "--yes" in text
    assert elapsed < 60, f"validate took {elapsed:.0f} s"


def test_run_of_such_a_scenario_needs_yes(limits_path, tmp_path, cli):
    code, out, err = cli("run", limits_path, "--draws", "2000", "--out", tmp_path / "o", "--no-store")
    message = " ".join(err.split())
    assert code == 2 and "--yes" in message and "estimated" in message and "GiB" in message, (out, err)
    assert not (tmp_path / "o").exists()


def test_validate_of_the_reference_still_simulates_its_sample(cli, reference_path):
    code, out, err = cli("validate", reference_path)
    text = " ".join(out.split())
    assert code == 0, err
    assert "a default run is estimated" in text and "64 sampled draws simulated" in text
    assert text.index("estimated") < text.index("64 sampled draws simulated")
