"""Chunked execution: same draws for any chunking or cluster, safe resume after kill -9, no mixing of runs."""

from __future__ import annotations

import fcntl
import functools
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from evlaunch.errors import EvlaunchError, RunError
from evlaunch.runs.draw_table import DrawTable
from evlaunch.runs.execution import (
    RunCancelled,
    chunk_bounds,
    chunk_path,
    execute,
    open_chunks,
    read_manifest,
)

HERE = Path(__file__).resolve().parent
N = 2_500
PROBS = (0.05, 0.1, 0.5, 0.9, 0.95)


def _uniforms(index: np.ndarray, stream: int, seed: int) -> np.ndarray:
    """splitmix64 of (seed, stream, draw index) -> uniforms in (0, 1): a stand-in for the model's draws."""
    with np.errstate(over="ignore"):
        z = index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed * 1_000_003 + stream)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53


def synthetic_chunk(start: int, stop: int, seed: int = 11, delay: float = 0.0, fail_from: int | None = None):
    """Per-draw outputs depending only on (seed, draw index); picklable as a module-level function."""
    if fail_from is not None and stop > fail_from:
        raise ValueError(f"model failed on draws {start}-{stop}")
    if delay:
        time.sleep(delay)
    index = np.arange(start, stop)
    u1, u2, u3 = (_uniforms(index, s, seed) for s in range(3))
    months = -12.0 * np.log(u1)
    months[u2 < 0.08] = np.inf  # never launches
    cash = 1e9 * np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u3) - 5e8
    return {
        "months_to_launch": months,
        "cash_min_cny": cash,
        "share": (u3 / 10).astype(np.float32),
        "launched": np.isfinite(months),
    }


class CountingChunk:
    """Wraps synthetic_chunk and records which chunks were computed (local runs only)."""

    def __init__(self, raise_interrupt_at: int | None = None):
        self.starts: list[int] = []
        self.raise_interrupt_at = raise_interrupt_at

    def __call__(self, start, stop):
        if self.raise_interrupt_at is not None and start >= self.raise_interrupt_at:
            raise KeyboardInterrupt
        self.starts.append(start)
        return synthetic_chunk(start, stop)


def _same(a: dict, b: dict) -> bool:
    """Stats dicts equal exactly (NaN equal to NaN)."""
    if a.keys() != b.keys():
        return False
    for column, row in a.items():
        for key, value in row.items():
            other = b[column][key]
            if not (value == other or (math.isnan(value) and math.isnan(other))):
                return False
    return True


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted local run: its stats and rows are what every other way must reproduce."""
    table = execute(synthetic_chunk, N, chunk_size=250, out_dir=tmp_path_factory.mktemp("ref"), run_fingerprint="fp")
    return table.stats(probs=PROBS), table.to_numpy()


def _assert_matches(table: DrawTable, reference) -> None:
    stats, rows = reference
    assert table.n_rows == N
    assert _same(table.stats(probs=PROBS), stats)
    for name, values in table.to_numpy().items():
        np.testing.assert_array_equal(values, rows[name])


@pytest.mark.parametrize("chunk_size", [7, 100, 1000])
def test_chunk_size_does_not_change_the_draws(tmp_path, reference, chunk_size):
    seen = []
    table = execute(
        synthetic_chunk, N, chunk_size=chunk_size, out_dir=tmp_path, run_fingerprint="fp",
        progress=lambda done, total: seen.append((done, total)),
    )
    _assert_matches(table, reference)
    n_chunks = math.ceil(N / chunk_size)
    assert len(table.paths) == n_chunks and table.paths[-1] == chunk_path(tmp_path / "chunks", n_chunks - 1)
    assert seen[0] == (0, N) and seen[-1] == (N, N) and len(seen) == n_chunks + 1
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    manifest = read_manifest(tmp_path)
    assert manifest["run_fingerprint"] == "fp" and manifest["n_draws"] == N and manifest["chunk_size"] == chunk_size
    assert manifest["columns"] == {
        "months_to_launch": "double", "cash_min_cny": "double", "share": "float", "launched": "bool",
    }
    assert manifest["complete"] is True
    assert _same(open_chunks(tmp_path).stats(probs=PROBS), reference[0])
    assert DrawTable.open(tmp_path).n_rows == N


def test_chunk_bounds_cover_all_draws_once():
    assert chunk_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunk_bounds(3, 100) == [(0, 3)]


@pytest.mark.slow
def test_local_cluster_with_two_workers_gives_the_same_draws(tmp_path, reference):
    seen = []
    table = execute(
        synthetic_chunk, N, chunk_size=300, out_dir=tmp_path, run_fingerprint="fp", workers=2,
        progress=lambda done, total: seen.append(done),
    )
    _assert_matches(table, reference)
    assert seen[-1] == N and len(seen) == math.ceil(N / 300) + 1


@pytest.fixture(scope="module")
def scheduler_address():
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


@pytest.mark.slow
def test_existing_scheduler_gives_the_same_draws(tmp_path, reference, scheduler_address):
    table = execute(
        functools.partial(synthetic_chunk, seed=11), N, chunk_size=200, out_dir=tmp_path,
        run_fingerprint="fp", scheduler=scheduler_address,
    )
    _assert_matches(table, reference)


@pytest.mark.slow
def test_cluster_cancel_keeps_finished_chunks_and_resume_completes(tmp_path, reference, scheduler_address):
    cancel = threading.Event()
    slow = functools.partial(synthetic_chunk, delay=0.1)

    def progress(done, total):
        if done >= 500:
            cancel.set()

    with pytest.raises(RunCancelled) as info:
        execute(slow, N, chunk_size=100, out_dir=tmp_path, run_fingerprint="fp",
                scheduler=scheduler_address, progress=progress, cancel=cancel)
    done = info.value.chunks_done
    assert 5 <= done < 25 and info.value.chunks_total == 25
    assert len(list((tmp_path / "chunks").glob("chunk-*.parquet"))) == done
    table = execute(synthetic_chunk, N, chunk_size=100, out_dir=tmp_path, run_fingerprint="fp",
                    scheduler=scheduler_address, resume=True)
    _assert_matches(table, reference)


@pytest.mark.slow
def test_cluster_chunk_error_propagates_and_keeps_finished_chunks(tmp_path, scheduler_address):
    failing = functools.partial(synthetic_chunk, fail_from=1_000)
    with pytest.raises(ValueError, match="model failed"):
        execute(failing, N, chunk_size=250, out_dir=tmp_path, run_fingerprint="fp", scheduler=scheduler_address)
    files = sorted((tmp_path / "chunks").glob("chunk-*.parquet"))
    assert 1 <= len(files) <= 4  # only chunks below draw 1000 can exist


def test_resume_after_kill_9_reuses_finished_chunks_and_matches_uninterrupted_run(tmp_path, reference):
    out = tmp_path / "run"
    script = textwrap.dedent(
        f"""
        import functools, sys
        sys.path.insert(0, {str(HERE)!r})
        import test_execution as t
        from evlaunch.runs.execution import execute
        execute(functools.partial(t.synthetic_chunk, delay=0.03), {N}, chunk_size=25,
                out_dir={str(out)!r}, run_fingerprint="fp")
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list((out / "chunks").glob("chunk-*.parquet"))) >= 15:
                break
            time.sleep(0.01)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    finished = sorted((out / "chunks").glob("chunk-*.parquet"))
    assert 15 <= len(finished) < 100, "the run should have been killed midway"
    assert read_manifest(out).get("complete") is None

    # What a crash mid-write could leave: a temporary sibling, and (worse) a truncated chunk file.
    (out / "chunks" / ".chunk-000099.parquet.4242-deadbeef.tmp").write_bytes(b"PAR1 half a chunk")
    truncated = chunk_path(out / "chunks", 98)
    truncated.write_bytes(finished[0].read_bytes()[:100])
    valid = {int(p.stem.split("-")[1]) for p in finished}

    counting = CountingChunk()
    seen = []
    table = execute(counting, N, chunk_size=25, out_dir=out, run_fingerprint="fp", resume=True,
                    progress=lambda done, total: seen.append(done))
    assert sorted(counting.starts) == [k * 25 for k in range(100) if k not in valid]
    assert seen[0] == 25 * len(valid)
    assert not [p for p in (out / "chunks").iterdir() if p.name.endswith(".tmp")]
    _assert_matches(table, reference)


def test_resume_refuses_chunks_of_a_different_run(tmp_path):
    execute(synthetic_chunk, 100, chunk_size=10, out_dir=tmp_path, run_fingerprint="scenario-A")
    for kwargs, what in [
        ({"run_fingerprint": "scenario-B", "n_draws": 100, "chunk_size": 10}, "run fingerprint 'scenario-A'"),
        ({"run_fingerprint": "scenario-A", "n_draws": 200, "chunk_size": 10}, "draws 100 on disk vs 200"),
        ({"run_fingerprint": "scenario-A", "n_draws": 100, "chunk_size": 20}, "chunk size 10 on disk vs 20"),
    ]:
        n = kwargs.pop("n_draws")
        with pytest.raises(RunError, match="new --out") as info:
            execute(synthetic_chunk, n, out_dir=tmp_path, resume=True, **kwargs)
        assert what in str(info.value) and "drop --resume" in str(info.value)
    assert read_manifest(tmp_path)["run_fingerprint"] == "scenario-A"  # untouched


def test_fresh_run_replaces_a_finished_run_but_refuses_an_unfinished_one(tmp_path):
    """Re-running into the same --out (e.g. `make demo` after editing the scenario) replaces a finished run;
    the finished chunks of an interrupted run of something else are not thrown away."""
    execute(synthetic_chunk, 100, chunk_size=10, out_dir=tmp_path, run_fingerprint="scenario-A")
    table = execute(synthetic_chunk, 60, chunk_size=20, out_dir=tmp_path, run_fingerprint="scenario-B")
    assert read_manifest(tmp_path)["run_fingerprint"] == "scenario-B" and table.n_rows == 60
    assert len(list((tmp_path / "chunks").glob("chunk-*.parquet"))) == 3
    manifest = read_manifest(tmp_path)
    manifest["complete"] = False  # as an interrupted run leaves it
    (tmp_path / "chunks" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError, match="unfinished different run"):
        execute(synthetic_chunk, 100, chunk_size=10, out_dir=tmp_path, run_fingerprint="scenario-C")
    assert read_manifest(tmp_path)["run_fingerprint"] == "scenario-B"  # untouched
    (tmp_path / "chunks" / "manifest.json").unlink()
    with pytest.raises(RunError, match="no manifest.json"):
        execute(synthetic_chunk, 100, chunk_size=10, out_dir=tmp_path, run_fingerprint="scenario-A")


def test_fresh_run_of_the_same_run_recomputes_everything(tmp_path):
    execute(synthetic_chunk, 100, chunk_size=10, out_dir=tmp_path, run_fingerprint="fp")
    counting = CountingChunk()
    execute(counting, 100, chunk_size=10, out_dir=tmp_path, run_fingerprint="fp")
    assert len(counting.starts) == 10
    counting = CountingChunk()
    execute(counting, 100, chunk_size=10, out_dir=tmp_path, run_fingerprint="fp", resume=True)
    assert counting.starts == []


def test_cancel_event_stops_and_resume_finishes(tmp_path, reference):
    cancel = threading.Event()

    def progress(done, total):
        if done >= 750:
            cancel.set()

    with pytest.raises(RunCancelled) as info:
        execute(synthetic_chunk, N, chunk_size=250, out_dir=tmp_path, run_fingerprint="fp",
                progress=progress, cancel=cancel)
    error = info.value
    assert isinstance(error, EvlaunchError)
    assert (error.chunks_done, error.chunks_total, error.draws_done, error.draws_total) == (3, 10, 750, N)
    assert "--resume" in str(error) and str(tmp_path) in str(error)
    with pytest.raises(RunError, match="unfinished"):
        open_chunks(tmp_path)
    _assert_matches(execute(synthetic_chunk, N, chunk_size=250, out_dir=tmp_path, run_fingerprint="fp",
                            resume=True), reference)


def test_keyboard_interrupt_becomes_run_cancelled(tmp_path, reference):
    with pytest.raises(RunCancelled) as info:
        execute(CountingChunk(raise_interrupt_at=1000), N, chunk_size=250, out_dir=tmp_path, run_fingerprint="fp")
    assert info.value.chunks_done == 4
    assert sorted(p.name for p in (tmp_path / "chunks").glob("chunk-*")) == [f"chunk-00000{k}.parquet" for k in range(4)]
    counting = CountingChunk()
    table = execute(counting, N, chunk_size=250, out_dir=tmp_path, run_fingerprint="fp", resume=True)
    assert counting.starts == list(range(1000, N, 250))
    _assert_matches(table, reference)


def test_a_second_writer_on_the_same_directory_is_refused(tmp_path):
    (tmp_path / "chunks").mkdir()
    with open(tmp_path / "chunks" / ".lock", "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RunError, match="another evlaunch process"):
            execute(synthetic_chunk, 10, chunk_size=5, out_dir=tmp_path, run_fingerprint="fp")


@pytest.mark.parametrize(
    ("outputs", "error", "message"),
    [
        (lambda a, b: [1, 2], TypeError, "dict of arrays"),
        (lambda a, b: {"x": np.zeros(b - a + 1)}, ValueError, "expected"),
        (lambda a, b: {"x": np.zeros((b - a, 2))}, ValueError, "shape"),
        (lambda a, b: {"x": np.array(["a"] * (b - a))}, TypeError, "dtype"),
        (lambda a, b: {"x": np.zeros(b - a)} if a == 0 else {"y": np.zeros(b - a)}, RunError, "columns"),
    ],
)
def test_chunk_outputs_that_break_the_contract_are_reported(tmp_path, outputs, error, message):
    with pytest.raises(error, match=message):
        execute(outputs, 20, chunk_size=10, out_dir=tmp_path, run_fingerprint="fp")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_draws": 0}, "number of draws"),
        ({"chunk_size": 0}, "chunk size"),
        ({"workers": 2, "scheduler": "tcp://127.0.0.1:1"}, "not both"),
        ({"workers": 0}, "--workers"),
        ({"run_fingerprint": ""}, "fingerprint"),
    ],
)
def test_invalid_arguments_are_refused(tmp_path, kwargs, message):
    arguments = {"n_draws": 10, "chunk_size": 5, "out_dir": tmp_path, "run_fingerprint": "fp"} | kwargs
    n = arguments.pop("n_draws")
    with pytest.raises(RunError, match=message):
        execute(synthetic_chunk, n, **arguments)


def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    from evlaunch.runs import execution

    monkeypatch.setattr(execution, "_CONNECT_TIMEOUT", "1s")
    with pytest.raises(RunError, match="cannot connect to the dask scheduler"):
        execute(synthetic_chunk, 10, chunk_size=5, out_dir=tmp_path, run_fingerprint="fp",
                scheduler="tcp://127.0.0.1:9")


def test_manifest_is_json_with_the_run_identity(tmp_path):
    execute(synthetic_chunk, 30, chunk_size=10, out_dir=tmp_path, run_fingerprint="abc")
    manifest = json.loads((tmp_path / "chunks" / "manifest.json").read_text())
    assert manifest["format"] == "evlaunch-chunks/1" and manifest["n_chunks"] == 3
