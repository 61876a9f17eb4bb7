"""The run directory: labelled, checksummed chunk files; resume that finds damaged or foreign chunks by name;
`--out` paths that cannot hold a run are refused with a message naming them; no import cycles in runs/."""

from __future__ import annotations

import ast
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evlaunch.errors import RunError
from evlaunch.runs.draw_table import DrawTable
from evlaunch.runs.execution import execute
from evlaunch.runs.run_dir import (
    CHUNK_METADATA_KEY,
    ChunkLabel,
    chunk_path,
    digest_path,
    make_out_dir,
    pack_series,
    read_manifest,
    table_checksum,
    verify_chunk,
    write_chunk,
)

RUNS_PACKAGE = Path(__file__).resolve().parents[2] / "src" / "evlaunch" / "runs"


def seeded_chunk(start: int, stop: int, seed: int = 1) -> dict[str, np.ndarray]:
    """Outputs that depend on (seed, draw index) only, like the model's."""
    index = np.arange(start, stop, dtype=np.float64)
    return {"npv": np.sin(index * 12.9898 + seed) * 1e9, "launched": (index + seed) % 3 != 0,
            "share": (np.cos(index + seed) ** 2).astype(np.float32)}


def seed_two(start: int, stop: int) -> dict[str, np.ndarray]:
    return seeded_chunk(start, stop, seed=2)


class Counting:
    def __init__(self):
        self.starts: list[int] = []

    def __call__(self, start, stop):
        self.starts.append(start)
        return seeded_chunk(start, stop)


def flip_bytes_inside(path: Path) -> None:
    """Damage the data pages but leave the footer (and so the row count and schema) intact."""
    data = bytearray(path.read_bytes())
    footer_start = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    for offset in range(footer_start // 3, footer_start // 3 + 24):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    pq.read_metadata(path)  # the footer still reads: the old completeness check passed this file


def test_a_chunk_carries_its_label_and_a_checksum_of_its_values(tmp_path):
    table = pa.table({name: pa.array(values) for name, values in seeded_chunk(10, 20).items()})
    label = ChunkLabel("fp", 1, 10, 20, {"seed": 1})
    write_chunk(tmp_path / "c.parquet", table, label)
    assert verify_chunk(tmp_path / "c.parquet", label, None) is None
    record = pq.read_metadata(tmp_path / "c.parquet").metadata[CHUNK_METADATA_KEY]
    assert b'"checksum": "' + table_checksum(table).encode() in record
    assert b'"draw_start": 10' in record and b'"seed": 1' in record
    for other, what in [(ChunkLabel("other", 1, 10, 20, {"seed": 1}), "run_fingerprint 'fp'"),
                        (ChunkLabel("fp", 2, 10, 20, {"seed": 1}), "chunk_index 1"),
                        (ChunkLabel("fp", 1, 10, 20, {"seed": 2}), "seed 1")]:
        assert what in verify_chunk(tmp_path / "c.parquet", other, None)
    assert "rows" in verify_chunk(tmp_path / "c.parquet", ChunkLabel("fp", 1, 10, 25), None)


def test_a_chunk_with_monthly_series_verifies_from_its_values_alone(tmp_path):
    """A run killed between writing a chunk and its SHA-256 record: --resume checks the chunk by decoding it,
    and a chunk read back (packed monthly series included: Parquet renames a list's item field) has the
    checksum it was written with, so it is reused, not recomputed as damaged."""
    rng = np.random.default_rng(3)
    arrays = {"own.npv": rng.normal(size=20),
              **{f"own.deliveries_month.2024-{m:02d}": rng.random(20).astype(np.float32) for m in range(1, 7)}}
    table = pack_series(arrays)
    assert pa.types.is_fixed_size_list(table.schema.field("own.deliveries_month").type)
    label = ChunkLabel("fp", 0, 0, 20)
    path = tmp_path / "chunk-000000.parquet"
    write_chunk(path, table, label)
    digest_path(path).unlink()
    assert verify_chunk(path, label, None) is None
    assert table_checksum(pq.read_table(path)) == table_checksum(table)


def test_the_checksum_depends_on_every_value():
    values = seeded_chunk(0, 50)
    base = table_checksum(pa.table(values))
    changed = dict(values, npv=values["npv"].copy())
    changed["npv"][17] = np.nextafter(changed["npv"][17], np.inf)
    assert table_checksum(pa.table(changed)) != base
    assert table_checksum(pa.table({"npv2" if k == "npv" else k: v for k, v in values.items()})) != base


def test_resume_recomputes_a_chunk_with_flipped_bytes_and_names_it(tmp_path):
    reference = execute(seeded_chunk, 100, chunk_size=20, out_dir=tmp_path / "ref", run_fingerprint="fp").to_numpy()
    out = tmp_path / "run"
    execute(seeded_chunk, 100, chunk_size=20, out_dir=out, run_fingerprint="fp")
    damaged = chunk_path(out / "chunks", 2)
    flip_bytes_inside(damaged)
    counting, notices = Counting(), []
    table = execute(counting, 100, chunk_size=20, out_dir=out, run_fingerprint="fp", resume=True,
                    notify=notices.append)
    assert counting.starts == [40]
    assert len(notices) == 1 and str(damaged) in notices[0] and "recomputing" in notices[0]
    for name, values in table.to_numpy().items():
        np.testing.assert_array_equal(values, reference[name])


def test_resume_recomputes_a_same_shaped_chunk_from_another_run(tmp_path):
    out, other = tmp_path / "run", tmp_path / "other"
    execute(seeded_chunk, 100, chunk_size=20, out_dir=out, run_fingerprint="seed-1", identity={"seed": 1})
    execute(seed_two, 100, chunk_size=20, out_dir=other, run_fingerprint="seed-2", identity={"seed": 2})
    shutil.copyfile(chunk_path(other / "chunks", 3), chunk_path(out / "chunks", 3))
    counting, notices = Counting(), []
    table = execute(counting, 100, chunk_size=20, out_dir=out, run_fingerprint="seed-1", identity={"seed": 1},
                    resume=True, notify=notices.append)
    assert counting.starts == [60]
    assert str(chunk_path(out / "chunks", 3)) in notices[0] and "another run" in notices[0]
    np.testing.assert_array_equal(table.to_numpy("npv")["npv"], seeded_chunk(0, 100)["npv"])
    # a chunk moved to another index of the same run is caught by its label too
    shutil.copyfile(chunk_path(out / "chunks", 0), chunk_path(out / "chunks", 1))
    notices.clear()
    execute(seeded_chunk, 100, chunk_size=20, out_dir=out, run_fingerprint="seed-1", identity={"seed": 1},
            resume=True, notify=notices.append)
    assert len(notices) == 1 and "chunk_index 0, expected 1" in notices[0]


def test_a_chunk_that_cannot_be_replaced_is_refused_naming_it(tmp_path, monkeypatch):
    out = tmp_path / "run"
    execute(seeded_chunk, 40, chunk_size=20, out_dir=out, run_fingerprint="fp")
    damaged = chunk_path(out / "chunks", 1)
    flip_bytes_inside(damaged)
    real_unlink = Path.unlink

    def refuse(self, missing_ok=False):
        if self == damaged:
            raise PermissionError(13, "Permission denied", str(self))
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(RunError, match="cannot be removed") as info:
        execute(seeded_chunk, 40, chunk_size=20, out_dir=out, run_fingerprint="fp", resume=True, notify=print)
    assert str(damaged) in str(info.value)


def test_reading_a_damaged_chunk_names_the_file(tmp_path):
    out = tmp_path / "run"
    execute(seeded_chunk, 60, chunk_size=20, out_dir=out, run_fingerprint="fp")
    flip_bytes_inside(chunk_path(out / "chunks", 1))
    table = DrawTable.open(out)  # footers read; the damage is in the data
    with pytest.raises(RunError, match="chunk-000001.parquet"):
        table.stats(["npv", "share", "launched"])


def test_the_manifest_records_the_run_identity(tmp_path):
    execute(seeded_chunk, 40, chunk_size=20, out_dir=tmp_path, run_fingerprint="fp", identity={"seed": 7})
    assert read_manifest(tmp_path)["identity"] == {"seed": 7}


def test_out_paths_that_cannot_hold_a_run_are_refused_naming_them(tmp_path):
    with pytest.raises(RunError, match="--out is empty"):
        make_out_dir("")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(RunError, match="symbolic link to .*nowhere, which does not exist"):
        make_out_dir(tmp_path / "dangling")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match="exists and is not a directory"):
        make_out_dir(tmp_path / "file")
    with pytest.raises(RunError, match=r"file is not a directory .*nothing can be created below it"):
        make_out_dir(tmp_path / "file" / "run" / "deeper")
    if sys.platform == "linux":
        with pytest.raises(RunError, match="--out /proc/evl: cannot create or write to this directory"):
            make_out_dir("/proc/evl")
    assert make_out_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    assert os.listdir(tmp_path / "a" / "b") == []  # the write probe leaves nothing behind


def _function_level_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("evlaunch"):
                    found.append(f"{path.name}:{inner.lineno} {inner.module}")
    return found


def test_runs_modules_import_evlaunch_only_at_module_level_and_without_cycles():
    """Imports inside functions were how the draw_table <-> execution cycle was dodged; none remain, and
    the runs modules' imports of each other form no cycle."""
    modules = sorted(RUNS_PACKAGE.glob("*.py"))
    assert [hit for path in modules for hit in _function_level_imports(path) if "report" not in hit] == []
    graph: dict[str, set[str]] = {}
    for path in modules:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[path.stem] = {node.module.rsplit(".", 1)[1] for node in tree.body if isinstance(node, ast.ImportFrom)
                            and (node.module or "").startswith("evlaunch.runs.")}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        return any(n == target or (n not in seen and reaches(n, target, seen | {n})) for n in graph.get(start, ()))

    assert [name for name in graph if reaches(name, name, set())] == []
