"""`run(scenario, ...)` and `Run`: a finished run's files read as typed summaries and tables.

A run is the same as `evlaunch run`'s (one implementation: `runs.runner.run_scenario`), so the same
scenario text, seed and version give a byte-identical summary.json from the CLI, the dashboard and here.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import duckdb
import numpy.typing as npt
import pandas as pd

from evlaunch.analysis.conditions import parse_condition
from evlaunch.api.export import write_excel
from evlaunch.api.results import (
    Comparison,
    Discovery,
    Sensitivity,
    compare,
    discover_in,
    key_figures,
    summary_frame,
)
from evlaunch.api.scenario import PathLike, Scenario
from evlaunch.api.summary import Summary
from evlaunch.errors import RunError
from evlaunch.report.build import write_report
from evlaunch.runs.draw_table import DrawTable
from evlaunch.runs.execution import RunCancelled as RunCancelled  # public: a run stopped by its cancel event
from evlaunch.runs.runner import DEFAULT_CHUNK as DEFAULT_CHUNK  # public: draws per chunk unless told
from evlaunch.runs.runner import DEFAULT_SEED as DEFAULT_SEED  # public: the seed runs use unless told
from evlaunch.runs.runner import RunOptions, run_scenario
from evlaunch.runs.store import RunStore
from evlaunch.runs.summary import DrawStatistics
from evlaunch.simulation.simulate import Model, prepare
from evlaunch.studies.scenario_analysis import sample_table, sensitivity_study

StoreLike = RunStore | PathLike | bool | None


def _store(store: StoreLike) -> RunStore | None:
    """None/False: no store; True: the default store ($EVLAUNCH_STORE or the user data directory);
    a path: that store file; a RunStore: itself."""
    if store is None or store is False:
        return None
    if store is True:
        return RunStore()
    if isinstance(store, RunStore):
        return store
    return RunStore(store)


class RunNotFinished(RunError):
    """A stored run that is running, failed, cancelled or interrupted: it has no results to open."""

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(f"run {run_id} is {status}; only finished runs can be opened")
        self.run_id = run_id
        self.status = status


class _AnnouncingStore:
    """A run store that reports the run id as soon as a run is recorded (or reopened to resume)."""

    def __init__(self, store: RunStore, on_start: Callable[[str], None]) -> None:
        self._store = store
        self._on_start = on_start

    def start_run(self, *args: Any, **kwargs: Any) -> str:
        run_id = self._store.start_run(*args, **kwargs)
        self._on_start(run_id)
        return run_id

    def reopen_run(self, *args: Any, **kwargs: Any) -> str | None:
        run_id = self._store.reopen_run(*args, **kwargs)  # None: no unfinished record; a new one is started
        if run_id is not None:
            self._on_start(run_id)
        return run_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _scratch_dir(name: str) -> Path:
    """A temporary run directory, removed when the process exits."""
    directory = tempfile.mkdtemp(prefix=f"evlaunch-{name}-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return Path(directory)


class Run:
    """A finished run: its directory (summary.json, draws.parquet, the chunks with monthly series,
    scenario.toml), its scenario, and its id in a run store if it was recorded in one.

    Get one from `evlaunch.run(...)` or `Run.open(directory_or_id)`.
    """

    def __init__(self, out_dir: PathLike, scenario: Scenario, summary: dict[str, Any], run_id: str | None = None,
                 timings: dict[str, float] | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.scenario = scenario
        self.run_id = run_id
        self.timings = dict(timings or {})
        self._summary = summary
        self._prepared: Model | None = None
        self._connection: duckdb.DuckDBPyConnection | None = None

    @classmethod
    def open(cls, dir_or_id: PathLike, store: StoreLike = True) -> Run:
        """A stored run: a run directory (holding summary.json and scenario.toml), or a run id (or a unique
        prefix of one) in `store` (default: the default store). RunError if it is unknown, RunNotFinished
        (a RunError with `run_id` and `status`) if it has not finished."""
        directory = Path(dir_or_id)
        if directory.is_dir():
            if not (directory / "scenario.toml").is_file():
                raise RunError(f"{directory}: not a run directory (no scenario.toml); give a directory that "
                               "`evlaunch run --out` wrote, or a run id from `evlaunch runs`")
            if not (directory / "summary.json").is_file():
                raise RunError(f"{directory}: the run did not finish (no summary.json); complete it with "
                               "`evlaunch run SCENARIO --out DIR --resume`")
            scenario = Scenario.load(directory / "scenario.toml")
            summary = json.loads((directory / "summary.json").read_text(encoding="utf-8"))
            return cls(directory, scenario, summary)
        if isinstance(dir_or_id, os.PathLike) or "/" in str(dir_or_id) or os.sep in str(dir_or_id):
            raise RunError(f"{dir_or_id}: no such run directory")
        opened = _store(store)
        if opened is None:
            raise RunError(f"{dir_or_id}: no such run directory, and no run store to look the id up in")
        record = opened.get_run(os.fspath(dir_or_id))
        if record["status"] != "finished":
            raise RunNotFinished(record["run_id"], record["status"])
        out_dir = Path(record["out_dir"])
        scenario = Scenario.from_text(record["scenario_text"], f"run {record['run_id']}", out_dir)
        return cls(out_dir, scenario, record["summary"], record["run_id"], record.get("timings"))

    @staticmethod
    def stored(store: RunStore | PathLike | bool = True, scenario: str | None = None, status: str | None = None,
               limit: int = 50) -> pd.DataFrame:
        """The runs in a store (default: the default store), newest first, as `evlaunch runs` lists them:
        run_id, created_at, scenario, draws, seed, status (running, finished, failed, cancelled or
        interrupted), recommended path and out_dir. Pass a run_id to `Run.open`."""
        rows = [{"run_id": record["run_id"], "created_at": record["created_at"],
                 "scenario": record["scenario_name"], "draws": record["draws"], "seed": record["seed"],
                 "status": record["status"],
                 "recommended": ((record.get("summary") or {}).get("recommended_path") or {}).get("name"),
                 "out_dir": record.get("out_dir")}
                for record in Run.stored_records(store, scenario, status, limit)]
        return pd.DataFrame(rows, columns=["run_id", "created_at", "scenario", "draws", "seed", "status",
                                           "recommended", "out_dir"])

    @staticmethod
    def stored_records(store: RunStore | PathLike | bool = True, scenario: str | None = None,
                       status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The same runs as `stored`, each the store's whole record as a dict (what `evlaunch runs --json`
        prints): also finished_at, the scenario's text and hash, version, options, timings, summary."""
        opened = _store(store)
        return opened.list_runs(scenario=scenario, status=status, limit=limit) if opened is not None else []

    @staticmethod
    def store_path(store: RunStore | PathLike | bool = True) -> Path | None:
        """The run store file a `store` argument means (True: $EVLAUNCH_STORE or the user data directory's
        store); None for no store."""
        opened = _store(store)
        return opened.path if opened is not None else None

    def __repr__(self) -> str:
        who = f"run {self.run_id}" if self.run_id else str(self.out_dir)
        return (f"<Run {who}: {self.summary.scenario}, {self.summary.draws:,} draws, seed {self.summary.seed}, "
                f"recommended {self.summary.recommended_path.name}>")

    @property
    def label(self) -> str:
        """How comparisons name this run: its store id, else its directory's name."""
        return self.run_id or self.out_dir.name

    # -- results ----------------------------------------------------------------------------------------

    @functools.cached_property
    def summary(self) -> Summary:
        """The summary.json contract as typed objects (`.raw` is the document itself)."""
        return Summary.from_dict(self._summary, self.scenario.paths)

    @functools.cached_property
    def draws(self) -> pd.DataFrame:
        """draws.parquet: one row per draw, its sampled inputs and key outputs (loaded on first use; for
        runs too large for memory use `draws_relation()`)."""
        return pd.read_parquet(self._draws_file())

    def draws_relation(self, connection: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyRelation:
        """draws.parquet as a lazy DuckDB relation: filter, aggregate and `.df()` without loading it all."""
        if connection is None:
            if self._connection is None:  # kept with the run: a relation lives only as long as its connection
                self._connection = duckdb.connect()
            connection = self._connection
        return connection.read_parquet(str(self._draws_file()))

    def _draws_file(self) -> Path:
        path = self.out_dir / "draws.parquet"
        if not path.is_file():
            raise RunError(f"run {self.label}: {path} is gone; re-run the scenario to rebuild it")
        return path

    def _table(self) -> DrawStatistics:
        # DrawTable provides what DrawStatistics asks for (its `columns` is a read-only property)
        return cast(DrawStatistics, DrawTable.open(self.out_dir))

    @functools.cached_property
    def paths(self) -> pd.DataFrame:
        """Per path (the index): launch quantiles ("YYYY-MM", None = not within the horizon), mean launch
        month (months after the start, over draws that launch), P(never), P(by target), deliveries over the
        horizon (mean), NPV mean/p10/p50/p90/CVaR10 (CNY), P(budget exceeded), and which is recommended."""
        rows, _, _ = key_figures(self.scenario.config, self._table())
        return summary_frame(rows)

    def compare(self, *others: Run | PathLike, labels: Sequence[str] | None = None) -> Comparison:
        """This run's paths against other runs' (Run objects, run directories or stored run ids): key figures,
        first-order stochastic dominance in NPV and launch month, and each run's recommendation. `labels`
        names this run and the others in order (default: each run's `label`); repeated names get a "'"."""
        runs = [self, *(other if isinstance(other, Run) else Run.open(other) for other in others)]
        if labels is not None and len(labels) != len(runs):
            raise RunError(f"compare: got {len(labels)} labels for {len(runs)} runs; expected one per run")
        unique: list[str] = []
        for label in labels if labels is not None else [each.label for each in runs]:
            while label in unique:
                label += "'"
            unique.append(label)
        return compare([(label, each.scenario.config, each._table()) for label, each in zip(unique, runs)])

    def sensitivity(self, method: str = "sobol", outputs: list[str] | None = None, samples: int = 128,
                    seed: int = 1, screening_draws: int = 2000) -> Sensitivity:
        """Sobol (indices with confidence intervals) or Morris (screening) sensitivity of per-draw outputs —
        default the recommended path's NPV and launch month and the NPV gap to the runner-up — over a fresh
        SALib design of the run's scenario (`samples` base samples; Sobol costs samples x (2 inputs + 2)
        model runs, Morris samples x (inputs + 1))."""
        return sensitivity(self.scenario, method, outputs, samples, seed, screening_draws, self._model())

    def discover(self, when: str | npt.ArrayLike, min_coverage: float = 0.3, inputs: int = 8,
                 label: str | None = None) -> Discovery:
        """Scenario discovery (PRIM) over this run's draws: the ranges of inputs under which `when` mostly
        holds. `when` is a condition such as "npv < 0" or "BAIC.launch_month_index > 12" (bare names are the
        recommended path's outputs), or one True/False per draw in the order of `draws`, e.g.
        `run.draws["own.npv"] < run.draws["BAIC.npv"]`, named by `label`. `inputs` is how many inputs
        (screened by KS distance) PRIM may restrict."""
        table = self._table()
        events = [column for column in table.columns if column.endswith("_event")]
        return discover_in(self.scenario.config, table, events, when, min_coverage, inputs, label)

    def report(self, path: PathLike | None = None) -> Path:
        """Write the self-contained HTML report (default: report.html in the run's directory)."""
        if not (self.out_dir / "chunks").is_dir():
            raise RunError(f"run {self.label}: its draws in {self.out_dir} are gone; re-run the scenario to "
                           "rebuild them")
        target = Path(path) if path is not None else self.out_dir / "report.html"
        return write_report(target, self.scenario.config, self._model(), self._table(), self._summary)

    def to_excel(self, path: PathLike) -> Path:
        """Write an .xlsx workbook: the run, the paths' key figures, per path and year, the market, and the
        scenario's assumptions with their ranges and reasons."""
        return write_excel(Path(path), self.summary, self.paths, self.scenario.assumptions())

    def _model(self) -> Model:
        if self._prepared is None:
            self._prepared = prepare(self.scenario.config, self.scenario.file.resolve().parent,
                                     self.scenario.source)
        return self._prepared


def sensitivity(scenario: Scenario | PathLike, method: str = "sobol", outputs: list[str] | None = None,
                samples: int = 128, seed: int = 1, screening_draws: int = 2000,
                model: Model | None = None) -> Sensitivity:
    """Sobol or Morris sensitivity of a scenario's per-draw outputs (see `Run.sensitivity`)."""
    if method not in ("sobol", "morris"):
        raise RunError(f"--method: got {method!r}; expected sobol or morris")
    chosen = scenario if isinstance(scenario, Scenario) else Scenario.load(scenario)
    prepared = model or prepare(chosen.config, chosen.file.resolve().parent, chosen.source)
    study = sensitivity_study(prepared, method, outputs, samples, seed, screening_draws)
    return Sensitivity.from_study(chosen.name, method, study)


def discover(scenario: Scenario | PathLike, when: str, *, draws: int = 4000, seed: int = DEFAULT_SEED,
             min_coverage: float = 0.3, inputs: int = 8, label: str | None = None) -> Discovery:
    """Scenario discovery (PRIM) for a `Scenario` or scenario file without a stored run: `draws` draws
    (with `seed`) are simulated in memory, then as `Run.discover`: the ranges of inputs under which the
    condition `when` (e.g. "own.npv < 0"; bare names are the recommended path's) mostly holds."""
    parse_condition(when)  # a malformed condition fails before any simulation
    chosen = scenario if isinstance(scenario, Scenario) else Scenario.load(scenario)
    model = prepare(chosen.config, chosen.file.resolve().parent, chosen.source)
    table = cast(DrawStatistics, sample_table(model, draws, seed))
    return discover_in(chosen.config, table, list(model.event_names), when, min_coverage, inputs, label)


def run(scenario: Scenario | PathLike, *, draws: int = 2000, seed: int = DEFAULT_SEED, workers: int | None = None,  # noqa: PLR0913  (keyword options mirror `evlaunch run`'s flags)
        scheduler: str | None = None, out: PathLike | None = None, store: StoreLike = None,
        chunk_size: int = DEFAULT_CHUNK, resume: bool = False, report: bool = False,
        progress: Callable[[int, int], None] | None = None, cancel: threading.Event | None = None,
        on_start: Callable[[str], None] | None = None) -> Run:
    """Run a scenario (a `Scenario` or a scenario file): `draws` Monte Carlo draws with `seed`, locally, on a
    local dask cluster of `workers`, or on the dask `scheduler` at an address.

    Files go to `out` (default: a temporary directory removed when the process exits). `store` records the
    run: True for the default store, a path for a store file, None (default) for none. `report=True` also
    writes report.html. `progress(done, total)` is called as chunks finish; setting `cancel` stops the run
    (finished chunks are kept; `resume=True` completes it) and raises RunCancelled. `on_start(run_id)` is
    called as soon as the store records the run, before any draw is simulated. Raises ScenarioError/RunError
    on bad input.
    """
    if workers is not None and scheduler is not None:
        raise RunError("give either --workers (start a local cluster) or --scheduler (use an existing one), "
                       "not both")
    chosen = scenario if isinstance(scenario, Scenario) else Scenario.load(scenario)
    out_dir = Path(out) if out is not None else _scratch_dir(chosen.name)
    options = RunOptions(draws=draws, seed=seed, chunk_size=chunk_size, workers=workers, scheduler=scheduler,
                         resume=resume, report=report)
    recorder = _store(store)
    if recorder is not None and on_start is not None:
        recorder = cast(RunStore, _AnnouncingStore(recorder, on_start))
    result = run_scenario(chosen.file, out_dir, options, recorder, progress, cancel, scenario_text=chosen.text,
                          write_report=write_report)
    return Run(result.out_dir, chosen, result.summary, result.run_id, result.timings)
