"""The real model on a dask cluster and after a crash: identical summaries however the run is split."""

import signal
import subprocess
import sys
import time

import pytest

from evlaunch.runs.runner import RunOptions, run_scenario
from evlaunch.runs.store import RunStore

DRAWS = 600


@pytest.fixture(scope="module")
def reference_summary(tmp_path_factory, reference_path):
    out = tmp_path_factory.mktemp("serial") / "run"
    return run_scenario(reference_path, out, RunOptions(draws=DRAWS, seed=5, chunk_size=DRAWS, report=False))


@pytest.mark.slow
def test_two_dask_workers_give_the_same_summary(reference_summary, reference_path, tmp_path):
    result = run_scenario(reference_path, tmp_path / "dask", RunOptions(draws=DRAWS, seed=5, chunk_size=150,
                                                                        workers=2, report=False))
    assert result.summary_path.read_bytes() == reference_summary.summary_path.read_bytes()


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_summary_and_completes_its_store_record(reference_summary, reference_path,
                                                                              tmp_path):
    """kill -9 after the first chunks are on disk (12 chunks of 50 draws, each well over the 0.05 s poll), then
    --resume: the same summary as an uninterrupted run, and the killed run's record goes from interrupted to
    finished (no second record)."""
    out, store = tmp_path / "killed", RunStore(tmp_path / "runs.duckdb")
    command = [sys.executable, "-m", "evlaunch.cli", "run", str(reference_path), "--draws", str(DRAWS), "--seed", "5",
               "--chunk-size", "50", "--out", str(out), "--store", str(store.path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunks = out / "chunks"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(list(chunks.glob("chunk-*.parquet"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = len(list(chunks.glob("chunk-*.parquet")))
    assert 2 <= finished < DRAWS // 50, "the run must have been killed mid-way"
    assert not (out / "summary.json").exists()
    [killed] = store.list_runs()
    assert killed["status"] == "interrupted"
    result = run_scenario(reference_path, out, RunOptions(draws=DRAWS, seed=5, chunk_size=50, resume=True,
                                                          report=False), store=store)
    assert result.summary_path.read_bytes() == reference_summary.summary_path.read_bytes()
    assert result.draws_simulated == DRAWS - 50 * finished
    [record] = store.list_runs()
    assert record["run_id"] == killed["run_id"] == result.run_id and record["status"] == "finished"
    assert record["summary"]["seed"] == 5


def test_resume_with_another_seed_is_refused(reference_summary, reference_path, cli):
    code, out, err = cli("run", reference_path, "--draws", str(DRAWS), "--seed", "6", "--chunk-size", str(DRAWS),
                         "--out", reference_summary.out_dir, "--resume", "--no-store")
    assert code == 2 and "resume" in (out + err).lower()
