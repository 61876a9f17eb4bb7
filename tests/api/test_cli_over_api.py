"""What the API gained so the CLI and the dashboard can be thin layers over it: each command's output is
the API's result, and the API says what the commands need (unfinished runs, run ids, labels, columns)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

import evlaunch
from evlaunch.config.scenario import month_label

REFERENCE = Path(__file__).resolve().parents[2] / "scenarios" / "xiaomi-2023.toml"


def test_compare_json_is_the_comparisons_document(base_run, api_store, cli):
    """`evlaunch compare --json` prints `Comparison.to_dict()`: a run directory and its stored id, labelled
    as the command labels them; rows named run:path with launch months as months after the start."""
    code, out, err = cli("compare", base_run.out_dir, base_run.run_id, "--store", api_store, "--json")
    assert code == 0, err
    comparison = base_run.compare(evlaunch.Run.open(base_run.run_id, api_store), labels=[base_run.out_dir.name, base_run.run_id])
    assert json.loads(out) == json.loads(json.dumps(comparison.to_dict()))
    rows = comparison.to_dict()["paths"]
    assert [row["path"] for row in rows] == [f"{label}:{path}" for label in (base_run.out_dir.name, base_run.run_id)
                                             for path in base_run.scenario.paths]
    figures, config = base_run.paths, base_run.scenario.config
    for row in rows[:len(base_run.scenario.paths)]:
        path = row["path"].split(":")[1]
        for quantile in ("p10", "p50", "p90"):  # the summary's "YYYY-MM" labels, as months after the start
            months = row[f"launch_month_{quantile}"]
            label = month_label(config.start_month + int(months)) if np.isfinite(months) and months < \
                config.horizon_months else None
            assert label == getattr(base_run.summary.paths[path].launch_month, quantile)
        assert row["npv_mean"] == pytest.approx(figures.loc[path, "npv_mean"])
        assert type(row["recommended"]) is bool


def test_compare_labels_must_match_the_runs(base_run):
    with pytest.raises(evlaunch.RunError, match="2 labels for 1 runs"):
        base_run.compare(labels=["a", "b"])


def test_an_unfinished_run_says_which_and_why(api_store, tmp_path, cli):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(evlaunch.RunCancelled):
        evlaunch.run(REFERENCE, draws=20, chunk_size=10, out=tmp_path / "stopped", store=api_store, cancel=cancel)
    stopped = evlaunch.Run.stored(api_store, status="cancelled")
    run_id = stopped["run_id"].iloc[0]
    with pytest.raises(evlaunch.RunNotFinished) as raised:
        evlaunch.Run.open(run_id, api_store)
    assert (raised.value.run_id, raised.value.status) == (run_id, "cancelled")
    assert isinstance(raised.value, evlaunch.RunError)
    code, _, err = cli("report", run_id, "--store", api_store)
    assert code == 2 and f"run {run_id} is cancelled; only finished runs have a report" in " ".join(err.split())


def test_on_start_reports_the_run_id_before_the_run_ends(tmp_path, api_store):
    seen: list[tuple[str, int]] = []
    progress: list[int] = []
    done = evlaunch.run(REFERENCE, draws=12, chunk_size=6, out=tmp_path / "run", store=api_store,
                        progress=lambda finished, total: progress.append(finished),
                        on_start=lambda run_id: seen.append((run_id, len(progress))))
    assert seen == [(done.run_id, 0)]  # called once, before any chunk finished


def test_stored_records_are_what_runs_json_prints(base_run, api_store, cli):
    code, out, err = cli("runs", "--store", api_store, "--json")
    assert code == 0, err
    records = evlaunch.Run.stored_records(api_store)
    assert json.loads(out) == json.loads(json.dumps(records, default=str))
    assert base_run.run_id in {record["run_id"] for record in records}
    assert list(evlaunch.Run.stored(api_store)["run_id"]) == [record["run_id"] for record in records]
    assert evlaunch.Run.store_path(api_store) == api_store and evlaunch.Run.store_path(False) is None


def test_discover_a_scenario_without_a_run(cli):
    """`evlaunch discover SCENARIO.toml` is `evlaunch.discover`: the same share, box and chance draws."""
    when = "own.launch_month_index > 14"
    found = evlaunch.discover(REFERENCE, when, draws=300, seed=5, min_coverage=0.2)
    assert found.columns == {"own.launch_month_index": "own.launch_month_index"} and found.n_draws == 300
    assert found.events  # the own licence's approval draw decides a late launch
    code, out, err = cli("discover", REFERENCE, "--when", when, "--draws", "300", "--seed", "5",
                         "--min-coverage", "0.2")
    assert code == 0, err
    assert f"holds in {found.share:.1%} of 300 draws\n" in out and "bare names" not in out
    assert " ".join(found.sentence.split()) in " ".join(out.split())
    for name, words in found.events.items():
        assert f"{name}: {words}" in " ".join(out.split())


def test_discover_names_the_columns_bare_names_read(base_run):
    found = base_run.discover("launch_month_index > 6", min_coverage=0.2)
    chosen = base_run.summary.recommended_path.name
    assert found.columns == {"launch_month_index": f"{chosen}.launch_month_index"}


def test_a_malformed_condition_fails_before_simulating():
    with pytest.raises(evlaunch.EvlaunchError):
        evlaunch.discover(REFERENCE, "npv <", draws=10**9)  # a billion draws would never finish


def test_text_standing_for_a_file_is_named_by_it():
    text = REFERENCE.read_text(encoding="utf-8")
    scenario = evlaunch.Scenario.from_text(text, str(REFERENCE), REFERENCE.parent, file=REFERENCE)
    assert scenario.file == REFERENCE and scenario.config == evlaunch.Scenario.load(REFERENCE).config
    assert evlaunch.Scenario.from_text(text, base_dir=REFERENCE.parent).file == REFERENCE.parent / "scenario.toml"
