"""Run a Monte Carlo model over many draws in chunks, locally or on a dask.distributed cluster.

The model is a pure function over a contiguous block of draws::

    chunk_fn(start: int, stop: int) -> dict[str, np.ndarray]   # each array 1-D, length stop - start

whose inputs for draws [start, stop) are derived from (seed, draw index) alone, so any chunking or
scheduling gives the same per-draw rows. `execute` cuts [0, n_draws) into chunks
`[k * chunk_size, min(n_draws, (k + 1) * chunk_size))`, runs them, and writes each finished chunk
atomically to `out_dir/chunks/chunk-000123.parquet` (compact: see `run_dir`). A manifest
`out_dir/chunks/manifest.json` (see `run_dir`) records which run the chunks belong to (fingerprint, draws, chunk
size, columns) so that

* `resume=True` continues an interrupted run (Ctrl-C, crash, `kill -9`): chunks already on disk that
  read back whole, with the right rows and columns, this run's label (fingerprint, chunk index, draw
  range) and a matching checksum are kept (`run_dir.verify_chunk`); the others are computed, and a
  damaged or foreign one is named on stderr;
* a directory holding another run's chunks is refused instead of silently mixed.

Where chunks run:

* `workers=None, scheduler=None`: in this process, in order;
* `workers=N`: a temporary `LocalCluster` of N single-threaded worker processes, closed afterwards;
* `scheduler="tcp://host:port"`: an existing dask.distributed cluster.

With a cluster, `chunk_fn` is shipped to the workers, so it must be picklable by cloudpickle and
importable there: a module-level function, or `functools.partial` of one with picklable arguments
(not a closure over unpicklable state such as open files or database connections). Results travel
back to this process, which writes the files, so workers need no access to `out_dir`. At most a few
chunks are in flight at once, so the driver's memory does not grow with the number of draws.

Only one `execute` may write to an `out_dir` at a time (enforced with a lock file on POSIX).

`consolidate` turns a finished run's chunks into its final files, each value stored once:
`out_dir/draws.parquet` (every column but the monthly series) and `out_dir/chunks/series.parquet` (the
monthly series, packed); the chunk files are then removed and the manifest lists the two files with
their SHA-256, so `DrawTable.open` reads them side by side and a resume of the finished run checks
them by their bytes instead of recomputing anything.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from evlaunch.atomic import atomic_path, is_temp_file, write_json_atomic
from evlaunch.errors import EvlaunchError, RunError
from evlaunch.runs.draw_table import DrawTable
from evlaunch.runs.run_dir import (
    CHUNKS_DIR,
    DRAWS_NAME,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    SERIES_FILE,
    SERIES_METADATA_KEY,
    ChunkLabel,
    chunk_bounds,
    chunk_path,
    compact_options,
    digest_path,
    file_digest,
    finished_chunk_paths,
    pack_series,
    read_manifest,
    schema_columns,
    verify_chunk,
    write_chunk,
)

__all__ = [
    "MANIFEST_FORMAT",
    "ChunkFn",
    "RunCancelled",
    "chunk_bounds",
    "chunk_path",
    "consolidate",
    "execute",
    "open_chunks",
    "read_manifest",
]

ChunkFn = Callable[[int, int], Mapping[str, np.ndarray]]
Progress = Callable[[int, int], None]
Notify = Callable[[str], None]

_LOCK_NAME = ".lock"
_ALLOWED_KINDS = "fbiu"  # float, bool, signed and unsigned integers
_POLL_SECONDS = 0.2  # how often a cluster run checks `cancel` while waiting for chunks
_CONNECT_TIMEOUT = "10s"  # how long to try reaching an existing --scheduler
CONSOLIDATED_ROW_GROUP = 10_000  # draws per row group of draws.parquet / series.parquet: ~40 MB held while writing


class RunCancelled(EvlaunchError):
    """The run stopped early (Ctrl-C or the cancel event); finished chunks are kept for `--resume`."""

    def __init__(self, out_dir: Path, chunks_done: int, chunks_total: int, draws_done: int, draws_total: int):
        self.out_dir = Path(out_dir)
        self.chunks_done = chunks_done
        self.chunks_total = chunks_total
        self.draws_done = draws_done
        self.draws_total = draws_total
        super().__init__(
            f"run cancelled with {chunks_done} of {chunks_total} chunks ({draws_done} of {draws_total} draws) "
            f"finished and kept in {self.out_dir / CHUNKS_DIR}; run the same command again with --resume "
            "to continue from there"
        )


def open_chunks(out_dir: str | os.PathLike[str]) -> DrawTable:
    """The finished draws of a run directory as a DrawTable (refuses an unfinished run)."""
    return DrawTable.open(out_dir)


# -- chunk files ---------------------------------------------------------------------------------


def _check_outputs(outputs: Any, start: int, stop: int, columns: dict[str, str] | None) -> pa.Table:
    """Validate one chunk's outputs against the contract (and earlier chunks); return them as a table."""
    if not isinstance(outputs, Mapping) or not outputs:
        raise TypeError(f"chunk_fn({start}, {stop}) must return a non-empty dict of arrays, got {type(outputs)!r}")
    arrays = {}
    for name, values in outputs.items():
        array = np.asarray(values)
        if not isinstance(name, str):
            raise TypeError(f"chunk_fn output names must be str, got {name!r}")
        if array.ndim != 1 or array.shape[0] != stop - start:
            raise ValueError(
                f"chunk_fn({start}, {stop}) output {name!r} has shape {array.shape}; expected ({stop - start},)"
            )
        if array.dtype.kind not in _ALLOWED_KINDS:
            raise TypeError(f"chunk_fn output {name!r} has dtype {array.dtype}; use float64, float32 or bool")
        arrays[name] = array
    table = pack_series(arrays)
    if columns is not None:
        found = schema_columns(table.schema)
        if found != columns:
            raise RunError(
                f"chunk_fn({start}, {stop}) returned columns {found}, but earlier chunks of this run have "
                f"{columns}; the model changed under the same run fingerprint: use a new --out"
            )
    return table


# -- run directory -------------------------------------------------------------------------------


@dataclass
class _Plan:
    chunks_dir: Path
    bounds: list[tuple[int, int]]
    manifest: dict[str, Any]
    identity: dict[str, Any]

    @property
    def columns(self) -> dict[str, str] | None:
        return self.manifest.get("columns")

    def label(self, index: int) -> ChunkLabel:
        start, stop = self.bounds[index]
        return ChunkLabel(self.manifest["run_fingerprint"], index, start, stop, self.identity)

    def save_manifest(self) -> None:
        write_json_atomic(self.chunks_dir / MANIFEST_NAME, self.manifest)


@contextmanager
def _exclusive(chunks_dir: Path):
    """Hold an advisory lock on the chunk directory for the whole run (released by the OS on kill -9)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; documented as one writer per out_dir
        yield
        return
    with open(chunks_dir / _LOCK_NAME, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(
                f"another evlaunch process is writing to {chunks_dir.parent}; wait for it or use a new --out"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _describe_mismatch(manifest: dict[str, Any], wanted: dict[str, Any]) -> str:
    parts = []
    for key, label in (("run_fingerprint", "run fingerprint"), ("n_draws", "draws"), ("chunk_size", "chunk size")):
        if manifest.get(key) != wanted[key]:
            parts.append(f"{label} {manifest.get(key)!r} on disk vs {wanted[key]!r} now")
    return "; ".join(parts)


def _prepare(out_dir: Path, n_draws: int, chunk_size: int, fingerprint: str, resume: bool,
             identity: dict[str, Any], notify: Notify) -> tuple[_Plan, list[int]]:
    """Check the directory against this run, write the manifest, return the plan and chunks still to do."""
    chunks_dir = out_dir / CHUNKS_DIR
    bounds = chunk_bounds(n_draws, chunk_size)
    wanted = {
        "format": MANIFEST_FORMAT,
        "run_fingerprint": fingerprint,
        "n_draws": n_draws,
        "chunk_size": chunk_size,
        "n_chunks": len(bounds),
        "identity": identity,
        "columns": None,
    }
    manifest = read_manifest(out_dir)
    existing = sorted(chunks_dir.glob("chunk-*.parquet"))
    for leftover in chunks_dir.iterdir():
        if is_temp_file(leftover):  # from an interrupted write; we hold the lock, so nobody owns it
            leftover.unlink(missing_ok=True)
    _check_directory_run(out_dir, manifest, wanted, existing, resume)

    if resume and manifest is not None and manifest.get("consolidated") and not _describe_mismatch(manifest, wanted):
        problem = _consolidated_problem(out_dir, manifest)
        if problem is None:  # a finished run: nothing to compute, its files stay as they are
            return _Plan(chunks_dir, bounds, manifest, identity), []
        notify(f"{problem}; recomputing all draws")
    plan = _Plan(chunks_dir, bounds, wanted, identity)
    if not resume:
        for path in existing:  # a fresh start of the same run: recompute everything
            _remove(path)
    plan.save_manifest()
    return plan, _chunks_to_do(plan, resume, notify)


def _check_directory_run(out_dir: Path, manifest: dict[str, Any] | None, wanted: dict[str, Any],
                         existing: list[Path], resume: bool) -> None:
    """Refuse a directory whose chunks belong to another (or an unknown) run that they could be mixed
    with; on a resume of the same run, carry the recorded columns over into `wanted`."""
    chunks_dir = out_dir / CHUNKS_DIR
    if manifest is not None:
        mismatch = _describe_mismatch(manifest, wanted)
        if mismatch and resume:
            raise RunError(
                f"cannot resume in {out_dir}: its chunks belong to a different run ({mismatch}); "
                "use a new --out, or drop --resume to start over in an empty directory"
            )
        if mismatch and existing and not manifest.get("complete"):
            raise RunError(
                f"{out_dir} holds {len(existing)} chunk file(s) of an unfinished different run ({mismatch}); "
                "finish that run with its own command and --resume, or use a new --out, or delete the directory"
            )
        # a finished run of another scenario, seed or size in the same directory is replaced by this one
        if not mismatch and resume:
            wanted["columns"] = manifest.get("columns")
    elif existing:
        raise RunError(
            f"{chunks_dir} holds {len(existing)} chunk file(s) but no {MANIFEST_NAME}, so their run is unknown; "
            "use a new --out or delete that directory"
        )


def _chunks_to_do(plan: _Plan, resume: bool, notify: Notify) -> list[int]:
    """Indices of the chunks still to compute: all of them, or on a resume those not on disk as a valid
    chunk of this run (an invalid one is named through `notify` and removed)."""
    todo = []
    for index in range(len(plan.bounds)):
        path = chunk_path(plan.chunks_dir, index)
        if resume and path.exists():
            problem = verify_chunk(path, plan.label(index), plan.columns)
            if problem is None:
                continue
            notify(f"{path}: not a valid chunk of this run: {problem}; recomputing it")
            _remove(path)
        todo.append(index)
    return todo


def _consolidated_problem(out_dir: Path, manifest: dict[str, Any]) -> str | None:
    """Why a finished run's consolidated files are not as `consolidate` wrote them (None if they are)."""
    digests = manifest.get("digests") or {}
    for name in manifest["consolidated"]:
        path = out_dir / name
        if not path.is_file():
            return f"{path} is missing"
        if digests.get(name) != file_digest(path):
            return f"{path} was changed or damaged since the run finished"
    return None


def _remove(path: Path) -> None:
    """Delete a chunk file that is about to be recomputed (RunError naming it if that is impossible)."""
    try:
        digest_path(path).unlink(missing_ok=True)
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise RunError(
            f"{path} must be recomputed but cannot be removed ({exc.strerror or exc}); "
            "fix its permissions or use a new --out"
        ) from exc


def _stderr(message: str) -> None:
    print(f"evlaunch: {message}", file=sys.stderr, flush=True)


# -- execution -----------------------------------------------------------------------------------


class _Recorder:
    """Writes finished chunks, updates the manifest's columns on the first one, reports progress."""

    def __init__(self, plan: _Plan, todo: list[int], n_draws: int, progress: Progress | None):
        self.plan = plan
        self.n_draws = n_draws
        self.progress = progress
        todo_set = set(todo)
        self.chunks_done = len(plan.bounds) - len(todo)
        self.draws_done = sum(stop - start for k, (start, stop) in enumerate(plan.bounds) if k not in todo_set)

    def record(self, index: int, outputs: Any) -> None:
        start, stop = self.plan.bounds[index]
        table = _check_outputs(outputs, start, stop, self.plan.columns)
        write_chunk(chunk_path(self.plan.chunks_dir, index), table, self.plan.label(index))
        if self.plan.columns is None:
            self.plan.manifest["columns"] = schema_columns(table.schema)
            self.plan.save_manifest()
        self.chunks_done += 1
        self.draws_done += stop - start
        self.report()

    def report(self) -> None:
        if self.progress is not None:
            self.progress(self.draws_done, self.n_draws)

    def cancelled(self, out_dir: Path) -> RunCancelled:
        return RunCancelled(out_dir, self.chunks_done, len(self.plan.bounds), self.draws_done, self.n_draws)


def _run_local(chunk_fn: ChunkFn, todo: list[int], recorder: _Recorder, cancel: threading.Event | None, out_dir: Path):
    for index in todo:
        if cancel is not None and cancel.is_set():
            raise recorder.cancelled(out_dir)
        start, stop = recorder.plan.bounds[index]
        recorder.record(index, chunk_fn(start, stop))


def _call_chunk(chunk_fn: ChunkFn, start: int, stop: int) -> Any:
    """Runs on a worker: the chunk's outputs as plain numpy arrays (cheap to send back)."""
    outputs = chunk_fn(start, stop)
    if isinstance(outputs, Mapping):
        return {name: np.asarray(values) for name, values in outputs.items()}
    return outputs  # the driver reports the contract violation


def _run_cluster(
    client, chunk_fn: ChunkFn, todo: list[int], recorder: _Recorder, cancel: threading.Event | None, out_dir: Path
):
    from distributed import wait

    n_threads = sum(client.nthreads().values()) or 1
    max_in_flight = max(2, 2 * n_threads)  # keeps workers busy; bounds memory held for the driver
    fn_future = client.scatter(chunk_fn, broadcast=True, hash=False)
    queue = list(reversed(todo))
    pending: dict[Any, int] = {}

    def submit_more() -> None:
        while queue and len(pending) < max_in_flight:
            index = queue.pop()
            start, stop = recorder.plan.bounds[index]
            future = client.submit(_call_chunk, fn_future, start, stop, key=f"evlaunch-chunk-{index}-{os.urandom(4).hex()}")
            pending[future] = index

    try:
        submit_more()
        while pending:
            if cancel is not None and cancel.is_set():
                raise recorder.cancelled(out_dir)
            try:
                done, _ = wait(list(pending), timeout=_POLL_SECONDS, return_when="FIRST_COMPLETED")
            except TimeoutError:
                continue
            for future in sorted(done, key=pending.get):
                index = pending.pop(future)
                outputs = future.result()  # re-raises chunk_fn's exception from the worker
                future.release()
                recorder.record(index, outputs)
                del outputs
            submit_more()
    finally:
        if pending:
            client.cancel(list(pending))
        fn_future.release()


# Worker processes' environment, set before they start (glibc and BLAS read it at start-up): one thread
# each, numba and BLAS included (the workers are the parallelism; nested pools on the same cores only
# contend), and glibc reusing freed memory: dask's default MALLOC_TRIM_THRESHOLD_=65536 also switches off
# glibc's adaptive mmap threshold, so every temporary array over 128 kB was mmap'ed and unmapped again
# (measured: ~8x the page faults and a quarter of the CPU time in the kernel).
WORKER_ENVIRONMENT = {**{name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                              "NUMBA_NUM_THREADS")},
                      "MALLOC_TRIM_THRESHOLD_": str(256 * 2**20), "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20)}


@contextmanager
def _cluster_client(workers: int | None, scheduler: str | None):
    """A dask.distributed Client: on a temporary LocalCluster (`workers`) or an existing `scheduler`."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=_CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise RunError(
                f"cannot connect to the dask scheduler at {scheduler!r} ({exc}); check the address, "
                "or run without --scheduler"
            ) from exc
        try:
            yield client
        finally:
            client.close()
        return
    import dask

    with dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENVIRONMENT}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def execute(  # noqa: PLR0913 -- all but chunk_fn and n_draws are keyword-only, independent documented options
    chunk_fn: ChunkFn,
    n_draws: int,
    *,
    chunk_size: int,
    out_dir: str | os.PathLike[str],
    run_fingerprint: str,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    identity: Mapping[str, Any] | None = None,
    notify: Notify | None = None,
) -> DrawTable:
    """Run `chunk_fn` over draws [0, n_draws) in chunks of `chunk_size`; return the table of all draws.

    `run_fingerprint` identifies everything that determines the draws (scenario, seed, code version):
    `resume=True` refuses a directory whose manifest has another fingerprint, draw count or chunk size,
    and checks every chunk file already there (see `run_dir.verify_chunk`: label, draw range, checksum);
    one that is damaged or from another run is recomputed, and `notify(message)` (default: print to
    stderr) says so naming the file. `identity` (JSON-serialisable fields such as the scenario hash and
    seed) is recorded in the manifest and in every chunk's label.
    `progress(done_draws, n_draws)` is called once at the start and after each finished chunk.
    Setting `cancel` (from another thread) or Ctrl-C stops submitting new chunks, keeps finished
    ones and raises `RunCancelled`. An exception raised by `chunk_fn` propagates unchanged after the
    finished chunks are saved. See the module docstring for where chunks run and picklability.
    """
    if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 1:
        raise RunError(f"the number of draws must be a positive integer, got {n_draws!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise RunError(f"the chunk size must be a positive integer, got {chunk_size!r}")
    if workers is not None and scheduler is not None:
        raise RunError("give either --workers (start a local cluster) or --scheduler (use an existing one), not both")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise RunError(f"--workers must be a positive integer, got {workers!r}")
    if not isinstance(run_fingerprint, str) or not run_fingerprint:
        raise RunError("a run needs a non-empty run fingerprint to guard --resume")
    n_draws, chunk_size = int(n_draws), int(chunk_size)

    out = Path(out_dir)
    chunks_dir = out / CHUNKS_DIR
    chunks_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(chunks_dir):
        plan, todo = _prepare(out, n_draws, chunk_size, run_fingerprint, resume, dict(identity or {}),
                              notify or _stderr)
        recorder = _Recorder(plan, todo, n_draws, progress)
        recorder.report()
        try:
            if todo and workers is None and scheduler is None:
                _run_local(chunk_fn, todo, recorder, cancel, out)
            elif todo:
                with _cluster_client(workers, scheduler) as client:
                    _run_cluster(client, chunk_fn, todo, recorder, cancel, out)
        except KeyboardInterrupt:
            raise recorder.cancelled(out) from None
        if plan.manifest.get("consolidated"):
            return DrawTable.open(out)
        plan.manifest["complete"] = True
        plan.save_manifest()
    return DrawTable([chunk_path(chunks_dir, k) for k in range(len(plan.bounds))])


# -- consolidation -------------------------------------------------------------------------------


def consolidate(out_dir: str | os.PathLike[str], *, row_group_rows: int = CONSOLIDATED_ROW_GROUP) -> DrawTable:
    """Store a finished run's draws once: draws.parquet (all columns but the packed monthly series, in
    chunk order) and chunks/series.parquet (the series), in row groups of `row_group_rows` draws; then
    record them and their SHA-256 in the manifest and delete the chunk files. Returns the table over the
    two files. A run already consolidated is returned as it is. Memory: about one row group of draws.

    Crash-safe: both files are written atomically and the chunks are removed only after the manifest
    names the files, so an interruption leaves either the chunks (consolidated again on --resume) or
    the finished files.
    """
    out = Path(out_dir)
    chunks_dir = out / CHUNKS_DIR
    with _exclusive(chunks_dir):
        manifest = read_manifest(out)
        if manifest is None or not manifest.get("complete"):
            raise RunError(f"{out} holds no finished run to consolidate; finish it with --resume")
        if manifest.get("consolidated"):
            return DrawTable.open(out)
        chunks = finished_chunk_paths(out)
        names = _write_consolidated(chunks, out, row_group_rows)
        manifest["consolidated"] = names
        manifest["digests"] = {name: file_digest(out / name) for name in names}
        manifest.pop("columns", None)  # checked chunk by chunk while they existed; ~50 bytes per column
        write_json_atomic(chunks_dir / MANIFEST_NAME, manifest)
        for path in chunks:
            _remove(path)
    return DrawTable.open(out)


def _write_consolidated(chunks: list[Path], out: Path, row_group_rows: int) -> list[str]:
    """Copy the chunks' columns into draws.parquet and (if any) chunks/series.parquet; return their names
    relative to `out`. Both files get the same row groups, so `DrawTable` reads them side by side."""
    schema = pq.read_schema(chunks[0]).remove_metadata()
    plain = pa.schema([f for f in schema if SERIES_METADATA_KEY not in (f.metadata or {})])
    series = pa.schema([f for f in schema if SERIES_METADATA_KEY in (f.metadata or {})])
    targets = [(DRAWS_NAME, plain)] + ([(f"{CHUNKS_DIR}/{SERIES_FILE}", series)] if len(series) else [])
    with contextlib.ExitStack() as stack:
        writers = []
        for name, part in targets:
            tmp = stack.enter_context(atomic_path(out / name))
            writers.append((stack.enter_context(pq.ParquetWriter(tmp, part, **compact_options(part))), part))
        buffered: list[pa.Table] = []
        for index, path in enumerate(chunks):
            buffered.append(pq.ParquetFile(path, page_checksum_verification=True).read().replace_schema_metadata())
            rows = sum(t.num_rows for t in buffered)
            if rows >= row_group_rows or index == len(chunks) - 1:
                block = pa.concat_tables(buffered)
                keep = rows - rows % row_group_rows if index < len(chunks) - 1 else rows
                for writer, part in writers:
                    writer.write_table(block.slice(0, keep).select(part.names), row_group_rows)
                buffered = [block.slice(keep)] if keep < rows else []
    return [name for name, _ in targets]
