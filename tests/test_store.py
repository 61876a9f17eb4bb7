"""RunStore: records, lookups by prefix, schema versioning, and two processes recording at once."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import time

import duckdb
import numpy as np
import pytest

from evlaunch.errors import RunError
from evlaunch.runs.store import SCHEMA_VERSION, RunStore, default_store_path


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs.duckdb")


def test_record_lifecycle(store, tmp_path):
    run_id = store.start_run("xiaomi-2023", "[launch]\nmonth = 3\n", seed=42, draws=2000, version="9.9",
                             out_dir=tmp_path / "out")
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", run_id)
    running = store.get_run(run_id)
    assert running["status"] == "running" and running["finished_at"] is None and running["summary"] is None
    assert running["scenario_hash"] == hashlib.sha256(b"[launch]\nmonth = 3\n").hexdigest()
    assert (running["seed"], running["draws"], running["version"]) == (42, 2000, "9.9")
    assert running["out_dir"] == str(tmp_path / "out") and running["created_at"].endswith("+00:00")

    store.finish_run(run_id, {"p_profit": np.float64(0.61), "npv_p50": 1.5e9, "months": [np.int64(3)]},
                     {"simulate_s": 1.25}, "finished", draws_path=tmp_path / "out" / "draws.parquet")
    done = store.get_run(run_id)
    assert done["status"] == "finished" and done["finished_at"] >= done["created_at"]
    assert done["summary"] == {"p_profit": 0.61, "npv_p50": 1.5e9, "months": [3]}
    assert done["timings"] == {"simulate_s": 1.25}
    assert done["draws_path"].endswith("draws.parquet")


def test_list_filter_prefix_and_delete(store):
    ids = [store.start_run(name, "x", seed=i, draws=10) for i, name in enumerate(["a", "b", "a"])]
    store.finish_run(ids[0], {}, {}, "failed")
    assert [r["run_id"] for r in store.list_runs()] == ids[::-1]  # newest first
    assert {r["run_id"] for r in store.list_runs(scenario="a")} == {ids[0], ids[2]}
    assert [r["run_id"] for r in store.list_runs(status="failed")] == [ids[0]]
    assert len(store.list_runs(limit=1)) == 1

    run_id = ids[1]
    with pytest.raises(RunError, match="ambiguous"):
        store.get_run(run_id[:8])  # same date for all three
    with pytest.raises(RunError, match="no run with id"):
        store.get_run("19990101")
    with pytest.raises(RunError, match="give a run id"):
        store.get_run("")
    assert store.delete_run(run_id) == run_id
    with pytest.raises(RunError, match="no run with id"):
        store.get_run(run_id)
    with pytest.raises(RunError, match="no run"):
        store.finish_run(run_id, {}, {}, "finished")
    with pytest.raises(ValueError, match="finishes as one of"):
        store.finish_run(ids[2], {}, {}, "running")
    with pytest.raises(RunError, match="--status: got"):
        store.list_runs(status="done")


def test_unique_prefix_resolves(store):
    run_id = store.start_run("a", "x", seed=1, draws=1)
    assert store.get_run(run_id[:12])["run_id"] == run_id


def test_path_from_environment_and_default(tmp_path, monkeypatch):
    monkeypatch.setenv("EVLAUNCH_STORE", str(tmp_path / "env" / "my.duckdb"))
    assert RunStore().path == tmp_path / "env" / "my.duckdb" == default_store_path()
    assert RunStore(tmp_path / "arg.duckdb").path == tmp_path / "arg.duckdb"
    monkeypatch.delenv("EVLAUNCH_STORE")
    assert default_store_path().name == "runs.duckdb" and "evlaunch" in str(default_store_path())


def test_schema_version_is_recorded_and_newer_stores_are_refused(store):
    store.start_run("a", "x", seed=1, draws=1)
    assert store.schema_version() == SCHEMA_VERSION
    con = duckdb.connect(str(store.path))
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    con.close()
    with pytest.raises(RunError, match="newer than this evlaunch"):
        RunStore(store.path).list_runs()


def test_a_store_held_open_elsewhere_fails_clearly_after_the_timeout(tmp_path):
    path = tmp_path / "busy.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", (f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('ok', flush=True); "
         "time.sleep(30)")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        started = time.monotonic()
        with pytest.raises(RunError, match="stayed locked"):
            RunStore(path, lock_timeout=0.5).list_runs()
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()


_RECORDER = textwrap.dedent(
    """
    import os, sys, time
    from evlaunch.runs.store import RunStore
    store = RunStore(sys.argv[1], lock_timeout=60)
    open(sys.argv[3] + "." + sys.argv[2], "w").close()  # ready
    while not os.path.exists(sys.argv[3]):  # start together, so the two really contend
        time.sleep(0.005)
    for i in range(20):
        run_id = store.start_run(sys.argv[2], "text", seed=i, draws=100)
        store.finish_run(run_id, {"worker": sys.argv[2], "i": i}, {"total_s": 0.1 * i}, "finished")
    print("done", store.lock_waits, flush=True)
    """
)


def test_two_processes_recording_at_once_lose_nothing(tmp_path):
    path, go = tmp_path / "shared.duckdb", tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", _RECORDER, str(path), name, str(go)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for name in ("first", "second")
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"go.{name}").exists() for name in ("first", "second")):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "recorders did not start"
        time.sleep(0.01)
    go.touch()
    outputs = [proc.communicate(timeout=120) for proc in procs]
    waits = 0
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        word, count = out.split()
        assert word == "done"
        waits += int(count)
    assert waits > 0, "the two recorders never contended for the lock; the test proves nothing"
    runs = RunStore(path).list_runs(limit=None)
    assert len(runs) == 40 and len({r["run_id"] for r in runs}) == 40
    assert all(r["status"] == "finished" for r in runs)
    for name in ("first", "second"):
        mine = RunStore(path).list_runs(scenario=name, limit=None)
        assert sorted(r["summary"]["i"] for r in mine) == list(range(20))
        assert all(r["summary"]["worker"] == name and json.dumps(r["timings"]) for r in mine)


def test_a_run_whose_process_died_is_listed_as_interrupted(store):
    script = textwrap.dedent(f"""
        import os
        from evlaunch.runs.store import RunStore
        run_id = RunStore({str(store.path)!r}).start_run("dies", "x", seed=1, draws=10)
        print(run_id, flush=True)
        os._exit(9)  # killed before it could record the end
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    run_id = child.stdout.strip()
    assert child.returncode == 9 and run_id
    assert store.get_run(run_id)["status"] == "interrupted"
    assert [r["run_id"] for r in store.list_runs(status="interrupted")] == [run_id]
    live = store.start_run("alive", "x", seed=2, draws=10)  # this process is alive
    assert store.get_run(live)["status"] == "running"
    assert [r["run_id"] for r in store.list_runs(status="running")] == [live]
    with pytest.raises(RunError, match="--status: got 'bogus'"):
        store.list_runs(status="bogus")


def test_a_version_1_store_is_migrated(tmp_path):
    from evlaunch.runs.store import _create_v1

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
    _create_v1(con)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO runs (run_id, created_at, scenario_name, scenario_text, scenario_hash, version, seed, "
                "draws, status) VALUES ('20240101-000000-abcdef', now(), 's', 'x', 'h', '0.1.0', 1, 10, 'finished')")
    con.close()
    store = RunStore(path)
    assert store.schema_version() == SCHEMA_VERSION
    old = store.get_run("20240101")
    assert old["status"] == "finished" and old["owner"] is None


def _dead_owner_record(store, out_dir, text, seed, draws) -> str:
    """A "running" record whose process is gone (as `kill -9` leaves it)."""
    script = textwrap.dedent(f"""
        import os
        from evlaunch.runs.store import RunStore
        print(RunStore({str(store.path)!r}).start_run("killed", {text!r}, seed={seed}, draws={draws},
                                                       out_dir={str(out_dir)!r}), flush=True)
        os._exit(9)
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    return child.stdout.strip()


def test_resume_reopens_the_interrupted_record_instead_of_adding_one(store, tmp_path):
    out = tmp_path / "out"
    killed = _dead_owner_record(store, out, "x = 1", 5, 100)
    assert store.get_run(killed)["status"] == "interrupted"
    assert store.reopen_run(str(tmp_path / "elsewhere"), "x = 1", seed=5, draws=100) is None
    assert store.reopen_run(str(out), "x = 2", seed=5, draws=100) is None
    assert store.reopen_run(str(out), "x = 1", seed=6, draws=100) is None
    assert store.reopen_run(str(out), "x = 1", seed=5, draws=200) is None
    assert store.reopen_run(str(out), "x = 1", seed=5, draws=100) == killed
    reopened = store.get_run(killed)
    assert reopened["status"] == "running" and reopened["owner"].endswith(f":{os.getpid()}")
    store.finish_run(killed, {"ok": 1}, {}, "finished")
    assert [r["status"] for r in store.list_runs()] == ["finished"]  # one record, finished
    assert store.reopen_run(str(out), "x = 1", seed=5, draws=100) is None  # a finished run is not reopened


def test_resume_never_takes_over_a_live_run_but_reopens_cancelled_and_failed_ones(store, tmp_path):
    live = store.start_run("live", "x", seed=1, draws=10, out_dir=tmp_path)  # owned by this (living) process
    assert store.reopen_run(str(tmp_path), "x", seed=1, draws=10) is None
    for status in ("cancelled", "failed"):
        store.finish_run(live, None, {}, status)
        assert store.reopen_run(str(tmp_path), "x", seed=1, draws=10) == live
        assert store.get_run(live)["status"] == "running" and store.get_run(live)["finished_at"] is None
