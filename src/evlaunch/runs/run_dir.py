"""A run directory on disk: the chunk manifest, the chunk files and what each chunk says about itself.

Layout of `out_dir`::

    chunks/manifest.json          which run the chunks belong to (format, fingerprint, draws, chunk size, columns)
    chunks/chunk-000000.parquet   draws [0, chunk_size), one column per per-draw output
    chunks/chunk-000001.parquet   draws [chunk_size, 2 * chunk_size), ...
    chunks/sha256-000001          SHA-256 of chunk-000001.parquet's bytes (lets --resume skip decoding it)

Chunk files are compact (see `write_parquet`): zstd, floats byte-stream-split, and a monthly series
(columns `<series>.<YYYY-MM>`, e.g. "own.deliveries_month.2024-03") packed into one fixed-size-list
column `<series>` whose month labels sit in the field metadata under `SERIES_METADATA_KEY`
(`pack_series`; `runs.draw_table.DrawTable` shows them under the flat names again). A packed series is
stored losslessly transformed (`encode_series` / `decode_series`): the integer bit patterns of its values
differenced month on month and XOR-ed with those of the first series of the same kind (another path's),
which are equal in ~40% of the reference scenario's draws; about 30% fewer bytes than the float values.

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
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from evlaunch.atomic import atomic_path
from evlaunch.errors import RunError

__all__ = [
    "CHUNKS_DIR",
    "CHUNK_METADATA_KEY",
    "DRAWS_NAME",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "SERIES_FILE",
    "SERIES_METADATA_KEY",
    "SERIES_ENCODING_KEY",
    "SERIES_NAME",
    "ChunkLabel",
    "chunk_bounds",
    "compact_options",
    "decode_series",
    "digest_path",
    "encode_series",
    "file_digest",
    "chunk_path",
    "finished_chunk_paths",
    "make_out_dir",
    "pack_series",
    "read_manifest",
    "schema_columns",
    "table_checksum",
    "verify_chunk",
    "write_chunk",
    "write_parquet",
]

MANIFEST_FORMAT = "evlaunch-chunks/1"
CHUNKS_DIR = "chunks"
MANIFEST_NAME = "manifest.json"
CHUNK_METADATA_KEY = b"evlaunch.chunk"
DRAWS_NAME = "draws.parquet"  # a finished run's per-draw inputs and outputs (all but the monthly series)
SERIES_FILE = "series.parquet"  # in CHUNKS_DIR: a finished run's monthly series, packed, rows as in draws.parquet
SERIES_NAME = "{series}.{month}"  # flat name of one month of a packed series
SERIES_METADATA_KEY = b"evlaunch.series"  # field metadata of a packed monthly series: JSON list of month labels
SERIES_ENCODING_KEY = b"evlaunch.series_encoding"  # field metadata of a transformed series: see `encode_series`
_BITS: dict[np.dtype, np.dtype] = {np.dtype(np.float32): np.dtype(np.int32), np.dtype(np.float64): np.dtype(np.int64)}
_SERIES_NAME = re.compile(r"^(?P<series>.+_month)\.(?P<month>\d{4}-\d{2})$")
_ZSTD_LEVEL = 3  # measured on the reference scenario: level 9 saves < 2% and writes slower


def chunk_bounds(n_draws: int, chunk_size: int) -> list[tuple[int, int]]:
    """The [start, stop) draw ranges of all chunks, in order."""
    return [(start, min(n_draws, start + chunk_size)) for start in range(0, n_draws, chunk_size)]


def chunk_path(chunks_dir: Path, index: int) -> Path:
    """File of chunk `index` (at least 6 digits; ordering always uses the index, never the name)."""
    return Path(chunks_dir) / f"chunk-{index:06d}.parquet"


def digest_path(path: Path) -> Path:
    """The file holding the SHA-256 of a chunk file's bytes (chunk-000012.parquet -> sha256-000012)."""
    path = Path(path)
    return path.with_name("sha256-" + path.stem.removeprefix("chunk-"))


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
    """Column name -> Arrow type name, in file order (a fixed-size list as "fixed_size_list<float>[62]":
    the name of its item field is not kept by Parquet)."""
    return {column.name: _type_name(column.type) for column in schema}


def _type_name(data_type: pa.DataType) -> str:
    if pa.types.is_fixed_size_list(data_type):
        return f"fixed_size_list<{data_type.value_type}>[{data_type.list_size}]"
    return str(data_type)


def table_checksum(table: pa.Table) -> str:
    """SHA-256 (hex) of a table's column names, types and values, in column order.

    Values are hashed as their numpy bytes (booleans one byte each; a list column as its flattened
    values) and types by `schema_columns`' names (without a list's item field name, which Parquet does not
    keep), so the checksum depends on the data only, never on how Parquet encoded or compressed it: a
    chunk read back has the checksum it was written with.
    """
    digest = hashlib.sha256()
    for name, column in zip(table.column_names, table.columns):
        digest.update(json.dumps([name, _type_name(column.type), len(column)]).encode())
        if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
            column = pc.list_flatten(column)
        digest.update(column.to_numpy().tobytes())
    return digest.hexdigest()


def _series_groups(arrays: Mapping[str, np.ndarray]) -> dict[str, list[tuple[str, str]]]:
    """series name -> [(column, month label)] for the monthly series that can be packed (one float dtype)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, values in arrays.items():
        match = _SERIES_NAME.match(name)
        if match and np.asarray(values).dtype.kind == "f":
            groups.setdefault(match["series"], []).append((name, match["month"]))
    return {series: members for series, members in groups.items()
            if len({np.asarray(arrays[name]).dtype for name, _ in members}) == 1 and series not in arrays}


def encode_series(values: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """A monthly series [draws, months] of float32/float64 values as the integers `pack_series` stores.

    Each value's IEEE bit pattern (as a signed integer of its width) minus the previous month's (the first
    month as it is; wrapping integer arithmetic), then XOR-ed with the same differences of `reference`
    (another series of the same shape and dtype, e.g. the same quantity on another path) if given.
    Lossless for every value, NaN payloads and signed zeros included: `decode_series` inverts it bit for
    bit. Differences of smooth or constant months and equal paths are small or zero, which zstd stores in
    far fewer bytes than the floats themselves."""
    delta = _month_differences(values)
    return delta if reference is None else np.bitwise_xor(delta, _month_differences(reference))


def _month_differences(values: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(values).view(_BITS[np.asarray(values).dtype])
    return np.diff(bits, axis=1, prepend=np.zeros((bits.shape[0], 1), dtype=bits.dtype))


def decode_series(stored: np.ndarray, reference_stored: np.ndarray | None, dtype: np.dtype) -> np.ndarray:
    """The float values [draws, months] (`dtype`) of a series stored by `encode_series`; `reference_stored`
    is the reference series as stored (it has no reference itself), or None if it had none."""
    delta = stored if reference_stored is None else np.bitwise_xor(stored, reference_stored)
    return np.cumsum(delta, axis=1, dtype=delta.dtype).view(np.dtype(dtype))


def _series_reference(series: str, months: list[str], dtype: np.dtype, seen: dict[tuple, str]) -> str | None:
    """The first packed series of the same kind (its name after the last "."), months and dtype, if any
    other than `series` itself."""
    key = (series.rsplit(".", 1)[-1], tuple(months), dtype.str)
    first = seen.setdefault(key, series)
    return None if first == series else first


def pack_series(arrays: Mapping[str, np.ndarray]) -> pa.Table:
    """A table of 1-D columns in which each monthly series becomes one fixed-size-list column.

    Columns named `<series>.<YYYY-MM>` with `<series>` ending in "_month" and one float dtype are
    stored as one column `<series>` (row = draw, list = the months in the order given, their labels
    in the field metadata under `SERIES_METADATA_KEY`) at the place of its first month, as the integers
    of `encode_series` (its float dtype and reference series, JSON, under `SERIES_ENCODING_KEY`); all
    other columns are kept as they are, in order. `runs.draw_table.DrawTable` unpacks them by name.
    """
    packable = _series_groups(arrays)
    member_of = {name: series for series, members in packable.items() for name, _ in members}
    fields, columns = [], []
    blocks: dict[str, np.ndarray] = {}
    seen: dict[tuple, str] = {}
    for name, values in arrays.items():
        series = member_of.get(name)
        if series is None:
            column = pa.array(np.asarray(values))
            fields.append(pa.field(name, column.type))
            columns.append(column)
        elif series not in blocks:
            months = [month for _, month in packable[series]]
            blocks[series] = np.stack([np.asarray(arrays[member]) for member, _ in packable[series]], axis=1)
            reference = _series_reference(series, months, blocks[series].dtype, seen)
            stored = encode_series(blocks[series], None if reference is None else blocks[reference])
            column = pa.FixedSizeListArray.from_arrays(pa.array(stored.ravel()), len(months))
            encoding = json.dumps({"dtype": blocks[series].dtype.name, "reference": reference})
            fields.append(pa.field(series, column.type, metadata={SERIES_METADATA_KEY: json.dumps(months).encode(),
                                                                  SERIES_ENCODING_KEY: encoding.encode()}))
            columns.append(column)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def compact_options(schema: pa.Schema) -> dict[str, Any]:
    """ParquetWriter options of `write_parquet` for a schema: zstd; floats and lists of floats
    byte-stream-split (their bytes grouped by significance, which zstd compresses far better; a list's
    values are named by their leaf path `<column>.list.element`); other columns (bool, integers)
    dictionary-encoded; a CRC-32 on every page, so damaged bytes are an error when read (`DrawTable`
    verifies them) rather than silently wrong values. No min/max statistics (nothing reads them; they
    cost about 50 bytes per column and row group). The Arrow schema is stored only where Parquet's own
    types cannot say it all (a fixed-size list, field metadata such as a packed series' months, file
    metadata such as a chunk's label, which pyarrow keeps only beside it): for plain float, bool and
    integer columns it is about 100 bytes per column that say nothing new."""

    def floating(stored: pa.Field) -> bool:  # a series stored by `encode_series` splits like its floats
        data_type = stored.type.value_type if _is_list(stored.type) else stored.type
        return pa.types.is_floating(data_type) or SERIES_ENCODING_KEY in (stored.metadata or {})

    split = [f"{f.name}.list.element" if _is_list(f.type) else f.name for f in schema if floating(f)]
    other = [f.name for f in schema if not floating(f)]
    plain = not schema.metadata and all(not f.metadata and (pa.types.is_floating(f.type) or pa.types.is_boolean(f.type)
                                    or pa.types.is_integer(f.type)) for f in schema)
    return {"compression": "zstd", "compression_level": _ZSTD_LEVEL, "write_page_checksum": True,
            "use_byte_stream_split": split or False, "use_dictionary": other or False,
            "write_statistics": False, "store_schema": not plain}


def _is_list(data_type: pa.DataType) -> bool:
    return pa.types.is_fixed_size_list(data_type) or pa.types.is_list(data_type)


def write_parquet(table: pa.Table, path: Path, *, row_group_rows: int | None = None) -> None:
    """Write `table` to `path` with `compact_options` (measured on the reference scenario: about 40%
    of the bytes pyarrow's defaults, snappy and dictionary, take for the same float values)."""
    with pq.ParquetWriter(path, table.schema, **compact_options(table.schema)) as writer:
        writer.write_table(table, row_group_rows)


def file_digest(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _digest_matches(path: Path) -> bool:
    """Whether a chunk file's bytes are those recorded beside it when it was written."""
    try:
        recorded = digest_path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return False
    return recorded == file_digest(path)


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
        write_parquet(labelled, tmp)
    with atomic_path(digest_path(path)) as tmp:
        tmp.write_text(file_digest(path) + "\n", encoding="ascii")


def verify_chunk(path: Path, label: ChunkLabel, columns: Mapping[str, str] | None) -> str | None:
    """Why the chunk file at `path` is not chunk `label` of this run (None if it is).

    Checks, in order: the footer reads; the row count; the columns (if known); the chunk's own label
    (run fingerprint, index, draw range); then the file's bytes against the SHA-256 recorded beside it
    when it was written (hashing, no decoding) or, without that record or if it differs, reads every
    value and compares the checksum, so damaged data pages are found here rather than while the
    summary is built.
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
    if _digest_matches(path):
        return None
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
