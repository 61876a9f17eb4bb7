"""One run end to end: scenario -> draws (in chunks, local or on dask) -> summary, draws, report, store.

The CLI and the dashboard both call `run_scenario`, so there is one implementation of a run.
Results are written atomically; an interrupted run keeps its finished chunks and `resume=True`
completes it with the same numbers an uninterrupted run gives.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from evlaunch._version import __version__
from evlaunch.atomic import write_json_atomic, write_text_atomic
from evlaunch.config.scenario import MAX_DRAWS, Scenario, load_scenario, parse_scenario
from evlaunch.errors import EvlaunchError, RunError, naming_source
from evlaunch.runs.draw_table import DrawTable
from evlaunch.runs.execution import RunCancelled, consolidate, execute
from evlaunch.runs.run_dir import make_out_dir
from evlaunch.runs.sampling import simulate_draws
from evlaunch.runs.store import RunStore
from evlaunch.runs.summary import build_summary
from evlaunch.simulation.simulate import Model, prepare

# (path, scenario, model, draw table, summary document) -> the report file written
ReportWriter = Callable[[Path, Scenario, Model, DrawTable, dict[str, Any]], Path]

DEFAULT_SEED = 20231031
DEFAULT_CHUNK = 500   # draws per chunk: the unit of progress, resume and distribution


@dataclass(frozen=True)
class RunOptions:
    """How to run: number of draws, seed, chunking and where chunks execute."""

    draws: int = 2000
    seed: int = DEFAULT_SEED
    chunk_size: int = DEFAULT_CHUNK
    workers: int | None = None
    scheduler: str | None = None
    resume: bool = False
    report: bool = True


@dataclass(frozen=True)
class RunResult:
    """What a finished run produced (paths on disk and the summary document)."""

    run_id: str | None
    out_dir: Path
    summary: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)   # seconds per phase
    draws_simulated: int | None = None   # draws computed by this call (fewer than the run's when resumed)

    @property
    def summary_path(self) -> Path:
        return self.out_dir / "summary.json"

    @property
    def draws_path(self) -> Path:
        return self.out_dir / "draws.parquet"

    @property
    def report_path(self) -> Path:
        return self.out_dir / "report.html"


@functools.lru_cache(maxsize=4)
def _model(scenario_text: str, source: str, base_dir: str) -> Model:
    return prepare(parse_scenario(scenario_text, source), base_dir, source)


def load_model(scenario_path: str | os.PathLike[str], scenario_text: str | None = None) -> Model:
    """The prepared model of a scenario file, as a run uses it.

    `scenario_text` (e.g. a stored run's exact input) is used instead of the file's contents; it is
    still named by `scenario_path` in messages, and its relative table paths are read from that
    path's folder. Models are cached by (text, path), so a run and its report share one.
    Raises ScenarioError/DataError (exit 2 in the CLI) for an invalid scenario or missing data.
    """
    path = Path(scenario_path)
    if scenario_text is None:
        load_scenario(path)  # the file's own checks and messages (unreadable, not TOML, schema)
        scenario_text = path.read_text(encoding="utf-8")
    return _model(scenario_text, str(scenario_path), str(path.resolve().parent))


def compute_chunk(scenario_text: str, source: str, base_dir: str, seed: int, start: int, stop: int
                  ) -> dict[str, np.ndarray]:
    """Per-draw inputs and outputs for draws [start, stop): a pure function of its arguments, so any
    process (a dask worker included) computes the same rows."""
    model = _model(scenario_text, source, base_dir)
    try:
        # one BLAS thread: a threaded BLAS sums in an order that depends on its thread count, which would make
        # the last digits depend on the machine and on how a run is split (local vs dask workers)
        with threadpool_limits(limits=1, user_api="blas"):
            inputs, outputs = simulate_draws(model, seed, start, stop)
    except EvlaunchError as error:
        raise naming_source(error, source) from None
    # continuous inputs as outputs are stored (the uniform event draws, 30-bit Sobol points, exactly as drawn)
    stored_inputs = {name: values if name in model.event_names else stored_output(values)
                     for name, values in inputs.items()}
    return {**stored_inputs, **{name: stored_output(values) for name, values in outputs.items()}}


STORED_MANTISSA_BITS = 17  # of an output as stored: relative rounding <= 2**-18 (3.8e-6), under the 1e-5 to
# which per-draw outputs agree across machines (README, Reproducibility), so the digits dropped are not results


def stored_output(values: np.ndarray) -> np.ndarray:
    """An output as a run stores it: rounded to the nearest value with a `STORED_MANTISSA_BITS`-bit mantissa
    (ties away from zero; about 5.5 significant digits, finer than the 1e-5 relative to which the model's
    outputs are reproducible across machines, far finer than its uncertainty) in its own dtype, so
    draws.parquet's column types and users' float64 arithmetic are unchanged while the zeroed low bytes
    cost almost nothing on disk after byte-stream-split + zstd (about 2.1 bytes a value where full float64
    values take 8, float32's 3.4). Integers below 2**18 (months, counts, indices) stay exact; inf and NaN
    stay as they are; a float64 beyond float32's range becomes inf (never for the model's outputs). The
    continuous inputs are stored the same way (the model ran on their exact values; nothing reruns it from
    the stored ones: the report and discovery read them for statistics), the uniform event draws and
    booleans exactly as sampled. The summary is computed from the stored values, so it is the
    same however the run is split."""
    unsigned: type[np.unsignedinteger[Any]]
    if values.dtype == np.float64:
        bits, unsigned = 52, np.uint64
    elif values.dtype == np.float32:
        bits, unsigned = 23, np.uint32
    else:
        return values
    drop = bits - STORED_MANTISSA_BITS
    pattern = np.ascontiguousarray(values).view(unsigned)
    # adding half of the dropped part to the bit pattern rounds the magnitude to nearest (a carry moves into
    # the exponent exactly when it should); the sign bit is never reached for finite values
    rounded = np.bitwise_and(np.add(pattern, unsigned(1 << (drop - 1))), ~unsigned((1 << drop) - 1)).view(values.dtype)
    rounded = np.where(np.isfinite(values), rounded, values)
    if values.dtype == np.float64:
        with np.errstate(over="ignore"):
            rounded = rounded.astype(np.float32).astype(np.float64)
    return rounded


def fingerprint(scenario_text: str, seed: int) -> str:
    """Identifies everything that determines the draws: scenario text, seed, code version and the stored
    precision of outputs and inputs (so chunks an earlier evlaunch of the same version string stored more finely are
    recomputed, never mixed into a resumed run)."""
    text = f"{__version__}\n{seed}\nstored-bits-{STORED_MANTISSA_BITS}-inputs-too\n{scenario_text}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def run_identity(scenario_text: str, seed: int) -> dict[str, object]:
    """What every chunk file of a run records about it besides the fingerprint (read in messages)."""
    return {"scenario_sha256": hashlib.sha256(scenario_text.encode("utf-8")).hexdigest(), "seed": int(seed),
            "version": __version__}


def check_options(options: RunOptions) -> None:
    if not 1 <= options.draws <= MAX_DRAWS:
        raise RunError(f"--draws must be between 1 and {MAX_DRAWS:,}, got {options.draws}")
    if not 0 <= options.seed < 2**63:
        raise RunError(f"--seed must be a non-negative integer below 2**63, got {options.seed}")
    if options.chunk_size < 1:
        raise RunError(f"--chunk-size must be positive, got {options.chunk_size}")


def _check_cancel(cancel: threading.Event | None, out: Path, draws: int, chunk_size: int) -> None:
    """Cancelling between the phases after simulation (the chunks stay, so the run can resume)."""
    if cancel is not None and cancel.is_set():
        chunks = -(-draws // chunk_size)
        raise RunCancelled(out, chunks, chunks, draws, draws)


# PLR0913 waived: the run options are grouped in RunOptions; store, progress and cancel stay positional because the
# CLI, the dashboard (web/jobs.py) and the API (api/run.py) pass them so; the rest are keyword-only
def run_scenario(scenario_path: str | Path, out_dir: str | Path, options: RunOptions = RunOptions(),  # noqa: PLR0913
                 store: RunStore | None = None, progress: Callable[[int, int], None] | None = None,
                 cancel: threading.Event | None = None, *, scenario_text: str | None = None,
                 notify: Callable[[str], None] | None = None, write_report: ReportWriter | None = None) -> RunResult:
    """Run a scenario file (or `scenario_text`, named by `scenario_path`) and write its results to `out_dir`.

    report.html is written by `write_report` (the report layer's `report.build.write_report`, passed in by the
    CLI, the dashboard and the API, which sit above both) when `options.report` is true; without a writer a
    run writes summary.json, draws.parquet and scenario.toml only.

    With `options.resume`, finished chunks in `out_dir` are checked and reused (a damaged or foreign one
    is recomputed and `notify(message)` names it; default: stderr), and the store's record of the
    interrupted run is completed instead of a second one being added. An unusable `out_dir` (empty,
    a file, a broken link, below a file, not creatable) is a RunError naming it.
    """
    check_options(options)
    started = time.perf_counter()
    source = str(scenario_path)
    if scenario_text is None:
        scenario = load_scenario(scenario_path)
        scenario_text = Path(scenario_path).read_text(encoding="utf-8")
    else:
        scenario = parse_scenario(scenario_text, source)
    base_dir = str(Path(scenario_path).resolve().parent)
    model = _model(scenario_text, source, base_dir)
    scenario = model.scenario  # with quantities resolved from the data (an estimated NEV trend)
    out = make_out_dir(out_dir)
    write_text_atomic(out / "scenario.toml", scenario_text)  # the run's exact input, for compare/discover
    prepared = time.perf_counter()
    run_id = None
    if store is not None:
        if options.resume:
            run_id = store.reopen_run(str(out.resolve()), scenario_text, seed=options.seed, draws=options.draws)
        if run_id is None:
            run_id = store.start_run(scenario.name, scenario_text, seed=options.seed, draws=options.draws,
                                     out_dir=str(out.resolve()), draws_path=str((out / "draws.parquet").resolve()))
    chunk_fn = functools.partial(compute_chunk, scenario_text, source, base_dir, options.seed)
    reused: list[int] = []  # draws already in finished chunks (a resumed run): the first progress report

    def report_progress(done: int, total: int) -> None:
        if not reused:
            reused.append(done)
        if progress is not None:
            progress(done, total)

    try:
        table = execute(chunk_fn, options.draws, chunk_size=min(options.chunk_size, options.draws), out_dir=out,
                        run_fingerprint=fingerprint(scenario_text, options.seed), workers=options.workers,
                        scheduler=options.scheduler, resume=options.resume, progress=report_progress, cancel=cancel,
                        identity=run_identity(scenario_text, options.seed), notify=notify)
        simulated = time.perf_counter()
        _check_cancel(cancel, out, options.draws, min(options.chunk_size, options.draws))
        # draws.parquet: one row per draw with its sampled inputs and key outputs; the monthly series go to
        # chunks/series.parquet (the report's fan charts read them there); each value is stored once
        table = consolidate(out)
        summary = build_summary(table, scenario, options.draws, options.seed, __version__)
        write_json_atomic(out / "summary.json", summary)
        summarised = time.perf_counter()
        _check_cancel(cancel, out, options.draws, min(options.chunk_size, options.draws))
        if options.report and write_report is not None:
            write_report(out / "report.html", scenario, model, table, summary)
        finished = time.perf_counter()
    except BaseException as error:
        if store is not None and run_id is not None:
            status = "cancelled" if isinstance(error, (RunCancelled, KeyboardInterrupt)) else "failed"
            store.finish_run(run_id, None, {"seconds": time.perf_counter() - started}, status)
        raise
    timings = {"prepare_s": prepared - started, "simulate_s": simulated - prepared,
               "summarise_s": summarised - simulated, "report_s": finished - summarised,
               "total_s": finished - started}
    if store is not None and run_id is not None:
        store.finish_run(run_id, summary, timings, "finished")
    return RunResult(run_id, out, summary, timings, options.draws - (reused[0] if reused else 0))
