"""A run directory on disk: the chunk manifest, the chunk files and what each chunk says about itself.

Layout of `out_dir`::

    chunks/manifest.json          which run the chunks belong to (format, fingerprint, draws, chunk size, columns)
    chunks/chunk-000000.parquet   draws [0, chunk_size), one column per per-draw output
    chunks/chunk-000001.parquet   draws [chunk_size, 2 * chunk_size), ...

Every chunk file carries, in its Parquet key-value metadata under `CHUNK_METADATA_KEY`, a JSON
record of where it belongs and what it holds: the run fingerprint (scenario text, seed and code
version hashed together), the run's identity fields given by the caller (e.g. scenario hash and
seed, for messages), its chunk index, its draw range [start, stop) and a SHA-256 checksum of its
column names, types and values. `verify_chunk` checks all of them, so a chunk whose bytes were
damaged (even with an intact footer) or that was copied in from another run is recognised by name
instead of being read as if it were this run's.

This module reads and writes files only; it knows nothing of the model or of how chunks are computed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from evlaunch.atomic import atomic_path
from evlaunch.errors import RunError

__all__ = [
    "CHUNKS_DIR",
    "CHUNK_METADATA_KEY",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "ChunkLabel",
    "chunk_bounds",
    "chunk_path",
    "finished_chunk_paths",
    "make_out_dir",
    "read_manifest",
    "schema_columns",
    "table_checksum",
    "verify_chunk",
    "write_chunk",
]

MANIFEST_FORMAT = "evlaunch-chunks/1"
CHUNKS_DIR = "chunks"
MANIFEST_NAME = "manifest.json"
CHUNK_METADATA_KEY = b"evlaunch.chunk"


def chunk_bounds(n_draws: int, chunk_size: int) -> list[tuple[int, int]]:
    """The [start, stop) draw ranges of all chunks, in order."""
    return [(start, min(n_draws, start + chunk_size)) for start in range(0, n_draws, chunk_size)]


def chunk_path(chunks_dir: Path, index: int) -> Path:
    """File of chunk `index` (at least 6 digits; ordering always uses the index, never the name)."""
    return Path(chunks_dir) / f"chunk-{index:06d}.parquet"


def make_out_dir(out_dir: str | os.PathLike[str]) -> Path:
    """Create the run directory `out_dir` (and its parents) and return it, or say exactly why it cannot be.

    Refused with a RunError naming the path: an empty path (it would be the current directory), an
    existing file, a symbolic link to nothing, a path below a regular file, and any directory the
    operating system will not create (e.g. under /proc, or without permission).
    """
    if not os.fspath(out_dir).strip():
        raise RunError("--out is empty; give a directory for the run's files (e.g. runs/my-scenario)")
    out = Path(out_dir)
    if out.is_symlink() and not out.exists():
        raise RunError(f"--out {out} is a symbolic link to {os.readlink(out)}, which does not exist; "
                       "create its target or give another directory")
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out}: exists and is not a directory; give a directory for the run's files")
    for parent in out.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise RunError(f"--out {out}: {parent} is not a directory (a file or a broken link), so nothing "
                               "can be created below it; give another directory")
            break
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".evlaunch-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise RunError(f"--out {out}: cannot create or write to this directory ({exc.strerror or exc}); "
                       "give a directory you can write to") from exc
    return out


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The chunk manifest of a run directory, or None if it has none."""
    path = Path(out_dir) / CHUNKS_DIR / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(f"cannot read {path} ({exc}); delete {path.parent} or use a new --out") from exc
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunError(f"{path} is not valid JSON ({exc}); delete {path.parent} or use a new --out") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise RunError(
            f"{path} is not an evlaunch chunk manifest of format {MANIFEST_FORMAT!r}; "
            f"delete {path.parent} or use a new --out"
        )
    return manifest


def finished_chunk_paths(out_dir: str | os.PathLike[str]) -> list[Path]:
    """The chunk files of a finished run directory, in draw order (RunError if it has none or is unfinished)."""
    out = Path(out_dir)
    manifest = read_manifest(out)
    if manifest is None:
        raise RunError(f"{out} holds no evlaunch draws (no {CHUNKS_DIR}/{MANIFEST_NAME}); check the --out path")
    try:
        n_chunks = len(chunk_bounds(int(manifest["n_draws"]), int(manifest["chunk_size"])))
    except (KeyError, TypeError, ValueError):
        raise RunError(f"{out / CHUNKS_DIR / MANIFEST_NAME} lacks a valid n_draws or chunk_size; "
                       "re-run into a new --out") from None
    paths = [chunk_path(out / CHUNKS_DIR, k) for k in range(n_chunks)]
    missing = sum(1 for p in paths if not p.is_file())
    if missing:
        raise RunError(f"the run in {out} is unfinished ({missing} of {n_chunks} chunks missing); finish it with --resume")
    return paths


# -- chunk files ---------------------------------------------------------------------------------


def schema_columns(schema: pa.Schema) -> dict[str, str]:
    """Column name -> Arrow type name, in file order."""
    return {column.name: str(column.type) for column in schema}


def table_checksum(table: pa.Table) -> str:
    """SHA-256 (hex) of a table's column names, types and values, in column order.

    Values are hashed as their numpy bytes (booleans one byte each), so the checksum
    depends on the data only, never on how Parquet encoded or compressed it.
    """
    digest = hashlib.sha256()
    for name, column in zip(table.column_names, table.columns):
        digest.update(json.dumps([name, str(column.type), len(column)]).encode())
        digest.update(column.to_numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class ChunkLabel:
    """What a chunk file must say about itself: run fingerprint, identity fields (e.g. scenario hash and
    seed), chunk index and draw range [start, stop)."""

    run_fingerprint: str
    index: int
    start: int
    stop: int
    identity: Mapping[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        return {"run_fingerprint": self.run_fingerprint, **self.identity, "chunk_index": self.index,
                "draw_start": self.start, "draw_stop": self.stop}


def write_chunk(path: Path, table: pa.Table, label: ChunkLabel) -> None:
    """Write a chunk file atomically, with its label and checksum in the Parquet metadata."""
    record = {**label.fields(), "checksum": table_checksum(table)}
    labelled = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                              CHUNK_METADATA_KEY: json.dumps(record, sort_keys=True).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(labelled, tmp)


def verify_chunk(path: Path, label: ChunkLabel, columns: Mapping[str, str] | None) -> str | None:
    """Why the chunk file at `path` is not chunk `label` of this run (None if it is).

    Checks, in order: the footer reads; the row count; the columns (if known); the chunk's own label
    (run fingerprint, index, draw range); then reads every value and compares the checksum, so
    damaged data pages are found here rather than while the summary is built.
    """
    try:
        metadata = pq.read_metadata(path)
        schema = metadata.schema.to_arrow_schema()
    except (OSError, pa.ArrowException) as exc:
        return f"its footer does not read ({_short(exc)})"
    rows = label.stop - label.start
    if metadata.num_rows != rows:
        return f"it has {metadata.num_rows} rows, expected {rows}"
    if columns is not None and schema_columns(schema) != dict(columns):
        return "its columns differ from this run's"
    raw = (metadata.metadata or {}).get(CHUNK_METADATA_KEY)
    try:
        record = json.loads(raw) if raw is not None else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict):
        return "it carries no evlaunch chunk label (written by another program or an older evlaunch)"
    expected = label.fields()
    for key, wanted in expected.items():
        if record.get(key) != wanted:
            return f"it belongs to another run or place ({key} {record.get(key)!r}, expected {wanted!r})"
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        return f"its data do not read ({_short(exc)})"
    if table_checksum(table) != record.get("checksum"):
        return "its values do not match its checksum (the file was damaged)"
    return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
