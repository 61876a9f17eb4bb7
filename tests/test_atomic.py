"""Atomic writes: the target is always either the old or the complete new content, never partial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from evlaunch.atomic import (
    atomic_path,
    is_temp_file,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


def _siblings(directory):
    return sorted(p.name for p in directory.iterdir())


def test_writes_create_and_replace_and_leave_no_temp_file(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    write_text_atomic(target, "first")
    write_text_atomic(target, "second é")
    assert target.read_text(encoding="utf-8") == "second é"
    write_bytes_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    write_json_atomic(tmp_path / "m.json", {"b": 1, "a": [1.5, None]})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": [1.5, None], "b": 1}
    assert _siblings(tmp_path / "sub") == ["a.txt"]


def test_unserialisable_json_leaves_old_file(tmp_path):
    target = tmp_path / "m.json"
    write_json_atomic(target, {"ok": True})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"ok": True}
    assert _siblings(tmp_path) == ["m.json"]


def test_atomic_path_error_keeps_old_target_and_removes_temp(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of the new rep")
        raise RuntimeError("writer crashed")
    assert target.read_text() == "old"
    assert _siblings(tmp_path) == ["report.html"]


def test_atomic_path_keyboard_interrupt_removes_temp(tmp_path):
    target = tmp_path / "x.parquet"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert _siblings(tmp_path) == []


def test_atomic_path_success_and_writer_that_wrote_nothing(tmp_path):
    target = tmp_path / "t.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and is_temp_file(tmp) and not is_temp_file(target)
        tmp.write_bytes(b"done")
    assert target.read_bytes() == b"done"
    with pytest.raises(FileNotFoundError, match="did not create"), atomic_path(tmp_path / "never.bin"):
        pass
    assert _siblings(tmp_path) == ["t.bin"]


def test_failed_rename_keeps_old_target(tmp_path, monkeypatch):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(target, "new")
    assert target.read_text() == "old"
    assert _siblings(tmp_path) == ["a.txt"]


def test_sigkill_during_rewrites_never_leaves_a_truncated_target(tmp_path):
    """A process rewriting a 4 MB file in a loop is killed with SIGKILL: the target stays whole."""
    target = tmp_path / "big.bin"
    size = 4 * 1024 * 1024
    script = textwrap.dedent(
        f"""
        from evlaunch.atomic import write_bytes_atomic
        i = 0
        while True:
            write_bytes_atomic({str(target)!r}, bytes([i % 251]) * {size}, fsync=False)
            i += 1
        """
    )
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, "-c", script])
        try:
            deadline = time.monotonic() + 30
            while not target.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.15 + 0.1 * attempt)  # well inside some later rewrite
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        data = target.read_bytes()
        assert len(data) == size
        assert data == data[:1] * size
    # Left-over temporary siblings are recognisable as such, never mistaken for the target.
    assert all(is_temp_file(p) for p in tmp_path.iterdir() if p.name != "big.bin")
