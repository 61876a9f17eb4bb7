"""The real model on a dask cluster and after a crash: identical summaries however the run is split."""

import os
import signal
import subprocess
import sys
import time

import pytest

from evlaunch.runs.runner import RunOptions, run_scenario

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
def test_killed_run_resumes_to_the_same_summary(reference_summary, reference_path, tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "evlaunch.cli", "run", str(reference_path), "--draws", str(DRAWS), "--seed", "5",
               "--chunk-size", "50", "--out", str(out), "--no-store"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "EVLAUNCH_SLOW_CHUNKS": "0.3"})
    chunks = out / "chunks"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(chunks.glob("chunk-*.parquet"))) < 3:
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = len(list(chunks.glob("chunk-*.parquet")))
    assert 3 <= finished < DRAWS // 50, "the run must have been killed mid-way"
    assert not (out / "summary.json").exists()
    result = run_scenario(reference_path, out, RunOptions(draws=DRAWS, seed=5, chunk_size=50, resume=True,
                                                          report=False))
    assert result.summary_path.read_bytes() == reference_summary.summary_path.read_bytes()


def test_resume_with_another_seed_is_refused(reference_summary, reference_path, cli):
    code, out, err = cli("run", reference_path, "--draws", str(DRAWS), "--seed", "6", "--chunk-size", str(DRAWS),
                         "--out", reference_summary.out_dir, "--resume", "--no-store")
    assert code == 2 and "resume" in (out + err).lower()
