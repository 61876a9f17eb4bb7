"""`evlaunch.run` and `Run`: the same run as the CLI's, its files read back as typed summaries and tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openpyxl
import pyarrow.parquet as pq
import pytest

import evlaunch

REFERENCE = Path(__file__).resolve().parents[2] / "scenarios" / "xiaomi-2023.toml"


def test_run_writes_the_cli_files_and_summary(base_run):
    for name in ("summary.json", "draws.parquet", "scenario.toml"):
        assert (base_run.out_dir / name).is_file()
    on_disk = json.loads((base_run.out_dir / "summary.json").read_text(encoding="utf-8"))
    assert base_run.summary.raw == on_disk
    assert base_run.run_id is not None
    assert base_run.summary.draws == 60 and base_run.summary.seed == 7


def test_a_lever_run_equals_the_cli_run_of_the_same_file(tmp_path, cli):
    """One implementation of a run: the API's run of a changed scenario gives the byte-identical
    summary.json that `evlaunch run` gives for a file holding the change."""
    changed = evlaunch.Scenario.load(REFERENCE).with_levers({"product.price": 240_000})
    api = evlaunch.run(changed, draws=30, seed=3, out=tmp_path / "api")
    copy = changed.save(tmp_path / "xiaomi-2023.toml")
    code, _, err = cli("run", copy, "--draws", "30", "--seed", "3", "--out", tmp_path / "cli", "--no-store")
    assert code == 0, err
    assert (tmp_path / "api" / "summary.json").read_bytes() == (tmp_path / "cli" / "summary.json").read_bytes()
    assert api.summary.paths["own"].npv.mean == json.loads(
        (tmp_path / "cli" / "summary.json").read_text())["paths"]["own"]["npv"]["mean"]


def test_typed_summary_mirrors_the_document(base_run):
    raw, summary = base_run.summary.raw, base_run.summary
    assert summary.scenario == raw["scenario"] and summary.as_of.isoformat() == raw["as_of"]
    assert summary.recommended_path.name == raw["recommended_path"]["name"]
    assert summary.recommended_path.passes == raw["recommended_path"]["passes"]
    assert summary.recommended_path.note == raw["recommended_path"]["note"]
    assert summary.recommended_path.least_violating == raw["recommended_path"]["least_violating"]
    assert summary.recommended_path.budget_binds == raw["recommended_path"]["budget_binds"]
    assert summary.recommended_path.beats_not_entering == raw["recommended_path"]["beats_not_entering"]
    for name, path in summary.paths.items():
        document = raw["paths"][name]
        assert path.launch_month.p50 == document["launch_month"]["p50"]
        assert path.npv.mean == document["npv"]["mean"] and path.npv.p90 == document["npv"]["p90"]
        assert {str(year): stats.p10 for year, stats in path.deliveries.items()} == {
            year: block["p10"] for year, block in document["deliveries"].items()}
        assert path.p_budget_exceeded == document["p_budget_exceeded"]
        assert path.p_ahead_of_pledge_schedule == document["p_ahead_of_pledge_schedule"]
    years = summary.by_year()
    assert len(years) == len(summary.paths) * 4 * len(raw["market"]["nev_share"]) + 2 * len(
        raw["market"]["nev_share"])


def test_draws_frame_has_draws_parquets_columns(base_run):
    columns = pq.read_schema(base_run.out_dir / "draws.parquet").names
    assert list(base_run.draws.columns) == columns
    assert len(base_run.draws) == 60
    relation = base_run.draws_relation()
    assert relation.columns == columns
    mean = relation.aggregate('avg("own.npv")').fetchall()[0][0]
    assert mean == pytest.approx(base_run.summary.paths["own"].npv.mean, rel=1e-12)


def test_paths_frame_agrees_with_the_draws_and_summary(base_run):
    paths, draws, summary = base_run.paths, base_run.draws, base_run.summary
    assert list(paths.index) == list(summary.paths)
    assert paths["recommended"].sum() == 1
    assert paths.index[paths["recommended"]][0] == summary.recommended_path.name
    for name in paths.index:
        assert paths.loc[name, "launch_p50"] == summary.paths[name].launch_month.p50
        assert paths.loc[name, "npv_mean"] == pytest.approx(draws[f"{name}.npv"].mean(), rel=1e-12)
        assert paths.loc[name, "p_never"] == pytest.approx(np.isnan(draws[f"{name}.launch_month_index"]).mean()
                                                           + np.isinf(draws[f"{name}.launch_month_index"]).mean())
        worst = np.sort(draws[f"{name}.npv"].to_numpy())[:6].mean()   # the worst 10% of 60 draws
        assert paths.loc[name, "npv_cvar10"] == pytest.approx(worst, rel=1e-9)


def test_open_by_directory_and_by_id(base_run, api_store):
    by_dir = evlaunch.Run.open(base_run.out_dir)
    by_id = evlaunch.Run.open(base_run.run_id, store=api_store)
    by_prefix = evlaunch.Run.open(base_run.run_id[:-2], store=api_store)
    for opened in (by_dir, by_id, by_prefix):
        assert opened.summary == base_run.summary
        assert opened.scenario.config == base_run.scenario.config
        assert opened.draws.equals(base_run.draws)
    assert by_id.run_id == base_run.run_id and by_dir.run_id is None


def test_stored_runs_are_listed(base_run, api_store):
    listed = evlaunch.Run.stored(api_store)
    row = listed.set_index("run_id").loc[base_run.run_id]
    assert row["status"] == "finished" and row["draws"] == 60 and row["seed"] == 7
    assert row["recommended"] == base_run.summary.recommended_path.name
    assert row["out_dir"] == str(base_run.out_dir.resolve())
    assert evlaunch.Run.stored(api_store, scenario="no such scenario").empty


def test_open_errors_name_what_to_do(tmp_path, api_store):
    with pytest.raises(evlaunch.RunError, match="no run with id 'nope'"):
        evlaunch.Run.open("nope", store=api_store)
    with pytest.raises(evlaunch.RunError, match="not a run directory"):
        evlaunch.Run.open(tmp_path)
    with pytest.raises(evlaunch.RunError, match="no such run directory"):
        evlaunch.Run.open(tmp_path / "missing")
    (tmp_path / "scenario.toml").write_text(REFERENCE.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(evlaunch.RunError, match="did not finish"):
        evlaunch.Run.open(tmp_path)


def test_bad_run_options_raise_the_cli_messages(cli):
    with pytest.raises(evlaunch.RunError) as raised:
        evlaunch.run(REFERENCE, draws=10, workers=2, scheduler="tcp://127.0.0.1:1")
    code, _, err = cli("run", REFERENCE, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1")
    assert code == 2 and " ".join(err.split()) == f"error: {raised.value}"
    with pytest.raises(evlaunch.RunError, match="--draws must be between 1"):
        evlaunch.run(REFERENCE, draws=0)


def test_compare_with_itself(base_run):
    same = base_run.compare(evlaunch.Run.open(base_run.out_dir), base_run)
    paths = list(base_run.summary.paths)
    label = base_run.label
    assert list(same.table["run"].unique()) == [label, "base", f"{label}'"]  # labels made unique
    assert len(same.table) == 3 * len(paths)
    assert f"{label}:own and base:own have the same NPV distribution" in same.dominance
    assert f"base:own and {label}':own have the same launch month distribution" in same.dominance
    chosen = base_run.summary.recommended_path.name
    assert {r.path for r in same.recommendations.values()} == {chosen}
    other = next(name for name in paths if name != chosen)
    assert same.recommendations["base"].why_others_lost[other]
    alone = base_run.compare()
    assert list(alone.table["path"]) == paths
    assert alone.table.drop(columns="run").set_index("path").equals(base_run.paths)
    document = alone.to_dict()
    assert document["recommended"][label]["path"] == base_run.summary.recommended_path.name
    assert document["recommended"][label]["passes"] == base_run.summary.recommended_path.passes
    assert json.dumps(document)  # plain JSON


def test_discover_finds_a_box_for_the_condition(base_run):
    chosen = base_run.summary.recommended_path.name
    # a launch after month 6: a condition PRIM explains at 60 draws on the recommended path (own: the approval)
    found = base_run.discover("launch_month_index > 6", min_coverage=0.2)
    assert found.path == chosen
    assert found.share == pytest.approx((base_run.draws[f"{chosen}.launch_month_index"] > 6).mean())
    assert found.n_draws == 60
    assert set(found.limits["input"]) == set(found.box.limits)
    assert found.sentence
    with pytest.raises(evlaunch.EvlaunchError, match="neither a per-draw column"):
        base_run.discover("profit < 0")


def test_sensitivity_rejects_an_unknown_method(base_run):
    with pytest.raises(evlaunch.RunError, match="expected sobol or morris"):
        base_run.sensitivity(method="fast")


def test_to_excel_sheets(base_run, tmp_path, cli):
    path = base_run.to_excel(tmp_path / "run.xlsx")
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == ["run", "paths", "per path and year", "market", "assumptions"]
    rows = list(book["paths"].values)
    header = rows[0]
    npv = {row[0]: row[header.index("npv_mean")] for row in rows[1:]}
    assert npv == pytest.approx({name: p.npv.mean for name, p in base_run.summary.paths.items()})
    years = list(book["per path and year"].values)
    assert years[0] == ("path", "year", "quantity", "mean", "p10", "p50", "p90")
    own_2025 = next(r for r in years[1:] if r[:3] == ("own", 2025, "deliveries"))
    assert own_2025[3] == pytest.approx(base_run.summary.paths["own"].deliveries[2025].mean)
    assumptions = list(book["assumptions"].values)
    fields = {row[0]: row for row in assumptions[1:]}
    assert "assumption:" in fields["product.price"][-1]
    assert len(fields) == len(base_run.scenario.assumptions())
    # the CLI writes the same workbook for the stored run
    code, out, err = cli("export", base_run.out_dir, "--xlsx", tmp_path / "cli.xlsx")
    assert code == 0 and "Wrote" in out, err
    cli_book = openpyxl.load_workbook(tmp_path / "cli.xlsx", read_only=True)
    for name in book.sheetnames:
        assert list(cli_book[name].values) == list(book[name].values)


def test_export_rejects_other_file_types(base_run, tmp_path, cli):
    code, _, err = cli("export", base_run.out_dir, "--xlsx", tmp_path / "run.csv")
    assert code == 2 and "expected a file name ending in .xlsx" in err


def test_report_writes_html(base_run, tmp_path):
    path = base_run.report(tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") or text.lower().startswith("<!doctype html>")
    assert base_run.summary.scenario in text
