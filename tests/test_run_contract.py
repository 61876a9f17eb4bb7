"""`evlaunch run` writes the three files; summary.json follows DESIGN's contract and is reproducible."""

import json
import re
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from evlaunch.report.build import write_report
from evlaunch.runs.execution import RunCancelled
from evlaunch.runs.runner import RunOptions, run_scenario

QUANTILE_KEYS = {"mean", "p10", "p50", "p90"}
MONTH = re.compile(r"^\d{4}-\d{2}$")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, reference_path):
    out = tmp_path_factory.mktemp("run")
    return run_scenario(reference_path, out / "a", RunOptions(draws=300, seed=11, chunk_size=300),
                        write_report=write_report)


def check_block(block):
    assert set(block) == QUANTILE_KEYS
    assert all(v is None or isinstance(v, float) for v in block.values())


def test_summary_follows_the_contract(first_run, reference_model):
    summary = json.loads(first_run.summary_path.read_text())
    assert set(summary) == {"scenario", "as_of", "draws", "seed", "version", "paths", "market", "recommended_path",
                            "guidance"}
    assert summary["scenario"] == "xiaomi-2023" and summary["as_of"] == "2023-10-31"
    assert summary["draws"] == 300 and summary["seed"] == 11 and isinstance(summary["version"], str)
    years = {str(y) for y in reference_model.scenario.years}
    assert set(summary["paths"]) == set(reference_model.scenario.paths)
    launches = [launch.name for launch in reference_model.scenario.competition.launches]
    for path in summary["paths"].values():
        # the contract's keys, plus (issue 13) what entry does to buyers and the rivals to the entrant
        assert set(path) == {"launch_month", "p_launch_by_target", "deliveries", "orders", "share", "revenue",
                             "npv", "peak_cash_need", "p_budget_exceeded", "surplus_change", "order_share",
                             "order_share_without_rivals", "rival_diversion", "first_12_months_deliveries",
                             "p_expansion", "p_ahead_of_pledge_schedule", "incumbent_profit_change",
                             "entrant_variable_profit", "welfare_change"}
        check_block(path["first_12_months_deliveries"])
        assert 0 <= path["p_expansion"] <= 1
        for key in ("surplus_change", "order_share", "order_share_without_rivals", "incumbent_profit_change",
                    "entrant_variable_profit", "welfare_change"):
            assert set(path[key]) == years
            for block in path[key].values():
                check_block(block)
        assert set(path["rival_diversion"]) == set(launches)
        for groups in path["rival_diversion"].values():
            assert {"entrant", "outside"} <= set(groups)
            assert all(v is None or 0.0 <= v <= 1.0 for v in groups.values())
        assert set(path["launch_month"]) == {"p10", "p50", "p90"}
        assert all(v is None or MONTH.match(v) for v in path["launch_month"].values())
        for key in ("deliveries", "orders", "share", "revenue"):
            assert set(path[key]) == years
            for block in path[key].values():
                check_block(block)
        check_block(path["npv"])
        check_block(path["peak_cash_need"])
        assert 0 <= path["p_launch_by_target"] <= 1 and 0 <= path["p_budget_exceeded"] <= 1
        assert 0 <= path["p_ahead_of_pledge_schedule"] <= 1
    assert set(summary["market"]) == {"total_sales", "nev_share"}
    for series in summary["market"].values():
        assert set(series) == years
    assert summary["recommended_path"]["name"] in summary["paths"]
    assert "NPV" in summary["recommended_path"]["criterion"]
    assert isinstance(summary["recommended_path"]["passes"], bool)
    assert (summary["recommended_path"]["least_violating"] is None) == summary["recommended_path"]["passes"]
    # the firm's own plan beside the forecast, never fitted: where it falls in each path's forecast of its year
    guidance = summary["guidance"]
    assert guidance["year"] == 2024 and guidance["deliveries"] == 100_000 and guidance["used_to_fit"] is False
    assert set(guidance["percentile_in_forecast"]) == set(summary["paths"])
    for name, share in guidance["percentile_in_forecast"].items():
        median = summary["paths"][name]["deliveries"]["2024"]["p50"]
        assert (share > 0.5 and median <= 100_000) or (share < 0.5 and median >= 100_000) or share == 0.5


def test_same_seed_gives_byte_identical_summary_whatever_the_chunking(first_run, tmp_path, reference_path):
    again = run_scenario(reference_path, tmp_path / "b", RunOptions(draws=300, seed=11, chunk_size=70))
    assert again.summary_path.read_bytes() == first_run.summary_path.read_bytes()
    other_seed = run_scenario(reference_path, tmp_path / "c", RunOptions(draws=300, seed=12, chunk_size=300))
    assert other_seed.summary_path.read_bytes() != first_run.summary_path.read_bytes()


def test_draws_file_has_one_row_per_draw_with_inputs_and_outputs(first_run):
    table = pq.read_table(first_run.draws_path)
    assert table.num_rows == 300
    names = set(table.column_names)
    assert {"product.price", "market.outside_share", "own.npv", "BAIC.launch_month_index"} <= names


def test_report_is_self_contained(first_run):
    text = first_run.report_path.read_text(encoding="utf-8")
    assert "<html" in text and "Paths compared" in text and "Plotly.newPlot" in text
    assert not re.search(r"<script[^>]+src=\"?https?://", text), "report must not load scripts from the network"
    assert text.count("Plotly.newPlot") >= 5  # launch, deliveries, NPV, cash, market charts


def test_rebuilding_a_runs_report_gives_the_same_file(first_run, reference_path, tmp_path):
    """`evlaunch report RUN` reproduces report.html byte for byte (no random element ids or timestamps)."""
    from evlaunch.config.scenario import load_scenario
    from evlaunch.runs.draw_table import DrawTable
    from evlaunch.runs.runner import load_model

    text = (first_run.out_dir / "scenario.toml").read_text(encoding="utf-8")
    model = load_model(reference_path, text)
    again = write_report(tmp_path / "report.html", load_scenario(reference_path), model,
                         DrawTable.open(first_run.out_dir), json.loads(first_run.summary_path.read_text()))
    assert again.read_bytes() == first_run.report_path.read_bytes()


SMALL = {"draws": 96, "chunk_size": 32}


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory, reference_path):
    """Two uninterrupted runs of 3 chunks: seed 5 (what a resume must reproduce) and seed 6 (a foreign run)."""
    root = tmp_path_factory.mktemp("small")
    runs = {seed: run_scenario(reference_path, root / f"seed{seed}", RunOptions(seed=seed, report=False, **SMALL))
            for seed in (5, 6)}
    for seed, run in runs.items():  # the same runs stopped after their last chunk, before the summary
        cancel = threading.Event()
        with pytest.raises(RunCancelled):
            run_scenario(reference_path, _cut(run), RunOptions(seed=seed, report=False, **SMALL), cancel=cancel,
                         progress=lambda done, total, cancel=cancel: done == total and cancel.set())
    return runs


def _cut(run):
    """Where `small_runs` keeps `run` as it is when killed after its chunks, before its summary."""
    return run.out_dir.parent / f"cut-{run.out_dir.name}"


def _interrupted_copy(run, where):
    """The run's directory as a run killed before its summary leaves it (manifest not yet complete; a finished
    run keeps no chunks: see `runs.execution.consolidate`)."""
    import shutil

    shutil.copytree(_cut(run), where)
    assert not (where / "summary.json").exists() and not (where / "draws.parquet").exists()
    manifest = json.loads((where / "chunks" / "manifest.json").read_text())
    manifest.pop("complete")
    (where / "chunks" / "manifest.json").write_text(json.dumps(manifest))
    return where


def test_resume_recomputes_a_chunk_with_flipped_bytes_naming_it(small_runs, reference_path, tmp_path, cli):
    """Reproducer: bytes flipped inside a chunk (footer intact) passed the completeness check, then --resume
    exited 1 with "Couldn't deserialize thrift" naming no file."""
    out = _interrupted_copy(small_runs[5], tmp_path / "damaged")
    damaged = out / "chunks" / "chunk-000001.parquet"
    data = bytearray(damaged.read_bytes())
    for offset in range(len(data) // 4, len(data) // 4 + 32):
        data[offset] ^= 0x5A
    damaged.write_bytes(bytes(data))
    pq.read_metadata(damaged)  # the footer is intact
    code, _, err = cli("run", reference_path, "--draws", "96", "--chunk-size", "32", "--seed", "5", "--out", out,
                       "--resume", "--no-store")
    assert code == 0, err
    assert str(damaged) in " ".join(err.split()) and "recomputing" in err
    assert (out / "summary.json").read_bytes() == small_runs[5].summary_path.read_bytes()


def test_resume_recomputes_a_same_shaped_chunk_of_another_seed(small_runs, reference_path, tmp_path):
    """Reproducer: a chunk from a run with another seed was mixed in silently (exit 0, a different summary)."""
    import shutil

    out = _interrupted_copy(small_runs[5], tmp_path / "mixed")
    foreign = out / "chunks" / "chunk-000002.parquet"
    shutil.copyfile(_cut(small_runs[6]) / "chunks" / "chunk-000002.parquet", foreign)
    notices = []
    result = run_scenario(reference_path, out, RunOptions(seed=5, resume=True, report=False, **SMALL),
                          notify=notices.append)
    assert len(notices) == 1 and str(foreign) in notices[0] and "another run" in notices[0]
    assert result.draws_simulated == 32
    assert result.summary_path.read_bytes() == small_runs[5].summary_path.read_bytes()


@pytest.mark.parametrize(("make_out", "fragment"), [
    (lambda tmp: "", "--out is empty"),
    (lambda tmp: (tmp / "link").symlink_to(tmp / "gone") or tmp / "link", "which does not exist"),
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file" / "run", "is not a directory"),
    (lambda tmp: "/proc/evl", "cannot create or write to this directory"),
])
def test_out_paths_that_cannot_hold_a_run_exit_2_naming_them(cli, reference_path, tmp_path, make_out, fragment):
    out = str(make_out(tmp_path))
    code, stdout, err = cli("run", reference_path, "--draws", "8", "--out", out, "--no-store")
    message = " ".join(err.split())
    assert code == 2 and fragment in message and (out == "" or out in message), (stdout, err)
    assert "Traceback" not in stdout + err and not (Path.cwd() / "chunks").exists()


def test_report_command_rebuilds_a_stored_runs_report(reference_path, tmp_path, cli):
    """`evlaunch report RUN_ID` prepares the model through the public `runs.runner.load_model`."""
    from evlaunch.runs.store import RunStore

    store = RunStore(tmp_path / "runs.duckdb")
    result = run_scenario(reference_path, tmp_path / "run", RunOptions(draws=32, seed=3, chunk_size=16), store=store,
                          write_report=write_report)
    code, _, err = cli("report", result.run_id[:15], "--store", store.path, "--out", tmp_path / "again.html")
    assert code == 0, err
    assert (tmp_path / "again.html").read_bytes() == result.report_path.read_bytes()
