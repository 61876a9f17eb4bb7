"""Atomic file writes: a reader sees either the old file or the complete new one, never a truncated one.

Why: runs are killed (Ctrl-C, OOM killer, `kill -9`, power loss) while they write chunk files, manifests,
reports and JSON summaries; a later `--resume` or report must never read half a file.

How: write to a temporary sibling in the *same directory* (so the rename stays on one filesystem),
flush and `fsync` it, `os.replace` it over the target (atomic on POSIX and Windows), then `fsync` the
directory so the rename itself survives a crash. Temporary siblings are named
`.<target name>.<pid>-<random>.tmp`: hidden, and never matching a target's own name or glob.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "is_temp_file", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]

_TEMP_SUFFIX = ".tmp"


def _temp_sibling(path: Path) -> Path:
    """A fresh temporary name next to `path` (same directory, hence same filesystem)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{_TEMP_SUFFIX}")


def is_temp_file(path: str | os.PathLike[str]) -> bool:
    """True for a temporary sibling left by an interrupted atomic write (safe to delete when no writer runs)."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(_TEMP_SUFFIX)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    """Persist a rename in `directory`; best effort (not supported on Windows or some filesystems)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on any error it is removed.

    For writers that want a file name rather than bytes (pyarrow, plotly, ...)::

        with atomic_path(out / "draws.parquet") as tmp:
            pyarrow.parquet.write_table(table, tmp)

    The parent directory is created if missing. The writer must create the file at the yielded path
    (a `FileNotFoundError` says so otherwise). `fsync=False` skips the flushes: still atomic against a
    killed process, but not against power loss.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(target)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(
                f"atomic write of {target}: the writer did not create the temporary file {tmp}"
            )
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        # Also on KeyboardInterrupt/SystemExit: never leave the temporary file behind.
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
    if fsync:
        _fsync_dir(target.parent)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> Path:
    """Atomically replace `path` with `data`; returns the target path."""
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, "xb") as fh:
        fh.write(data)
    return Path(path)


def write_text_atomic(
    path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8", fsync: bool = True
) -> Path:
    """Atomically replace `path` with `text` (UTF-8 by default); returns the target path."""
    return write_bytes_atomic(path, text.encode(encoding), fsync=fsync)


def write_json_atomic(
    path: str | os.PathLike[str],
    obj: Any,
    *,
    indent: int | None = 2,
    default: Callable[[Any], Any] | None = None,
    fsync: bool = True,
) -> Path:
    """Atomically replace `path` with `obj` as JSON (sorted keys, trailing newline); returns the target path.

    The object is serialised before anything is written, so an unserialisable object leaves the old file.
    """
    text = json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False, default=default) + "\n"
    return write_text_atomic(path, text, fsync=fsync)
