"""The run store: a small embedded DuckDB database listing every simulation run and its summary.

Where: `EVLAUNCH_STORE` if set, else `<user data dir>/evlaunch/runs.duckdb` (platformdirs), unless a
path is given to `RunStore`. What: one row per run (scenario text and hash, code version, seed,
draws, status, timings, summary, output paths), so runs can be listed, compared and reopened.

Concurrency: DuckDB lets only one process hold a database file open for writing. Several evlaunch
processes (a CLI run, the web UI, a batch of runs) may record at once, so every operation opens the
file, does its work in one statement or transaction, and closes it again; a process that finds the
file locked retries with jittered exponential backoff for up to `lock_timeout` seconds, then raises a
`RunError` that says so. Records are never lost or half-written: each write is one DuckDB
transaction.

Schema versions: the `meta` table holds `schema_version`; opening an older store applies the
migrations in `_MIGRATIONS` in order, opening a newer one is refused with a message to upgrade.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs

from evlaunch._version import __version__
from evlaunch.errors import RunError

__all__ = ["SCHEMA_VERSION", "STATUSES", "RunStore", "default_store_path"]

SCHEMA_VERSION = 2
STATUSES = ("running", "finished", "failed", "cancelled")
INTERRUPTED = "interrupted"  # shown for a "running" run whose process on this host is gone (killed, crashed)
ENV_VAR = "EVLAUNCH_STORE"
_MAX_BACKOFF_SECONDS = 0.25

_COLUMNS = (
    "run_id",
    "created_at",
    "finished_at",
    "scenario_name",
    "scenario_text",
    "scenario_hash",
    "version",
    "seed",
    "draws",
    "status",
    "timings",
    "summary",
    "out_dir",
    "draws_path",
    "owner",
)


def _create_v1(con) -> None:
    con.execute(
        """
        CREATE TABLE runs (
            run_id        VARCHAR PRIMARY KEY,
            created_at    TIMESTAMP NOT NULL,  -- UTC
            finished_at   TIMESTAMP,           -- UTC; NULL while running
            scenario_name VARCHAR NOT NULL,
            scenario_text VARCHAR NOT NULL,
            scenario_hash VARCHAR NOT NULL,    -- sha256 hex of scenario_text (UTF-8)
            version       VARCHAR NOT NULL,    -- evlaunch version that ran it
            seed          BIGINT NOT NULL,
            draws         BIGINT NOT NULL,
            status        VARCHAR NOT NULL,    -- running / finished / failed / cancelled
            timings       VARCHAR,             -- JSON object: phase -> seconds
            summary       VARCHAR,             -- JSON object: headline results
            out_dir       VARCHAR,
            draws_path    VARCHAR
        )
        """
    )
    con.execute("CREATE INDEX runs_scenario ON runs (scenario_name)")


def _add_owner_v2(con) -> None:
    """Who runs it ("host:pid"), so a run whose process died can be told from a live one."""
    con.execute("ALTER TABLE runs ADD COLUMN owner VARCHAR")


# version -> migration taking the schema from version - 1 to version; append, never edit.
_MIGRATIONS: dict[int, Callable[[Any], None]] = {1: _create_v1, 2: _add_owner_v2}


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_gone(owner: str | None) -> bool:
    """Whether the owner "host:pid" is a process of this host that no longer exists."""
    if not owner or ":" not in owner:
        return False
    host, pid = owner.rsplit(":", 1)
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def default_store_path() -> Path:
    """`EVLAUNCH_STORE` if set, else runs.duckdb in the user's data directory for evlaunch."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("evlaunch")) / "runs.duckdb"


def _new_run_id() -> str:
    """Sortable and short: UTC time to the second plus 6 random hex characters."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _json_default(value: Any) -> Any:
    """JSON for numpy scalars/arrays and paths found in summaries."""
    if hasattr(value, "tolist"):  # numpy scalar or array
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot store {type(value).__name__} {value!r} in a run summary; convert it to a number or str")


def _to_json(value: Mapping[str, Any] | None) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, default=_json_default)


def _is_lock_conflict(exc: Exception) -> bool:
    message = str(exc).lower()
    return "lock" in message and ("conflicting" in message or "could not set" in message)


def _utc_iso(value: datetime | None) -> str | None:
    return None if value is None else value.replace(tzinfo=UTC).isoformat()


class RunStore:
    """Records of simulation runs in one DuckDB file (see the module docstring for location/concurrency)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, lock_timeout: float = 30.0) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        self.lock_timeout = float(lock_timeout)
        self.lock_waits = 0  # how often this instance found the file locked and backed off (diagnostics)
        self._schema_checked = False

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    # -- connections ---------------------------------------------------------------------------------

    def _open(self):
        import duckdb

        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.005
        while True:
            try:
                return duckdb.connect(str(self.path))
            except duckdb.IOException as exc:
                if not _is_lock_conflict(exc):
                    raise RunError(f"cannot open the run store {self.path}: {exc}") from exc
                if time.monotonic() + delay > deadline:
                    raise RunError(
                        f"the run store {self.path} stayed locked by another process for "
                        f"{self.lock_timeout:g} s; retry when that process is done, or point {ENV_VAR} at "
                        "another file"
                    ) from exc
            except duckdb.Error as exc:
                raise RunError(
                    f"cannot open the run store {self.path}: {exc}; if it is damaged, move it away "
                    f"(a new one is created) or point {ENV_VAR} at another file"
                ) from exc
            self.lock_waits += 1
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, _MAX_BACKOFF_SECONDS)

    def _run(self, work: Callable[[Any], Any]) -> Any:
        """Open the store, make sure its schema is current, run `work(connection)`, close."""
        con = self._open()
        try:
            if not self._schema_checked:
                self._migrate(con)
                self._schema_checked = True
            return work(con)
        finally:
            con.close()

    def _migrate(self, con) -> None:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise RunError(
                    f"the run store {self.path} has schema version {current}, newer than this evlaunch "
                    f"supports ({SCHEMA_VERSION}); upgrade evlaunch or point {ENV_VAR} at another file"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[version](con)
            if current != SCHEMA_VERSION:
                con.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        """The schema version of the store file (after any migrations this evlaunch applies)."""
        row = self._run(lambda con: con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone())
        return int(row[0])

    # -- records -------------------------------------------------------------------------------------

    def start_run(
        self,
        scenario_name: str,
        scenario_text: str,
        *,
        seed: int,
        draws: int,
        version: str | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        draws_path: str | os.PathLike[str] | None = None,
    ) -> str:
        """Record a run as "running" and return its new id (e.g. "20240501-120000-a1b2c3")."""
        import duckdb  # imported when used: opening the CLI should not load the database engine

        version = __version__ if version is None else version
        scenario_hash = hashlib.sha256(scenario_text.encode("utf-8")).hexdigest()
        created_at = datetime.now(UTC).replace(tzinfo=None)

        def insert(con) -> str:
            for _ in range(10):
                run_id = _new_run_id()
                try:
                    con.execute(
                        "INSERT INTO runs (run_id, created_at, scenario_name, scenario_text, scenario_hash, "
                        "version, seed, draws, status, out_dir, draws_path, owner) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
                        [
                            run_id,
                            created_at,
                            scenario_name,
                            scenario_text,
                            scenario_hash,
                            str(version),
                            int(seed),
                            int(draws),
                            None if out_dir is None else os.fspath(out_dir),
                            None if draws_path is None else os.fspath(draws_path),
                            _owner(),
                        ],
                    )
                    return run_id
                except duckdb.ConstraintException:
                    continue  # same second and same 24 random bits: draw another id
            raise RunError(f"could not find a free run id in {self.path}")

        return self._run(insert)

    def reopen_run(self, out_dir: str | os.PathLike[str], scenario_text: str, *, seed: int, draws: int,
                   version: str | None = None) -> str | None:
        """For `--resume`: mark the unfinished record of this run as running again and return its id.

        The record is the newest one with the same output directory, scenario text, seed, draws and
        code version whose status is failed, cancelled, or running with its process gone (listed as
        interrupted). None if there is none (the caller then starts a new record). A record still
        owned by a live process is never taken over.
        """
        scenario_hash = hashlib.sha256(scenario_text.encode("utf-8")).hexdigest()
        version = __version__ if version is None else version

        def claim(con) -> str | None:
            rows = con.execute(
                "SELECT run_id, status, owner FROM runs WHERE out_dir = ? AND scenario_hash = ? AND seed = ? "
                "AND draws = ? AND version = ? AND status IN ('running', 'failed', 'cancelled') "
                "ORDER BY created_at DESC, run_id DESC",
                [os.fspath(out_dir), scenario_hash, int(seed), int(draws), str(version)],
            ).fetchall()
            for run_id, status, owner in rows:
                if status == "running" and not _process_gone(owner):
                    continue
                con.execute(
                    "UPDATE runs SET status = 'running', owner = ?, finished_at = NULL, summary = NULL, "
                    "timings = NULL WHERE run_id = ?", [_owner(), run_id])
                return run_id
            return None

        return self._run(claim)

    def finish_run(
        self,
        run_id: str,
        summary: Mapping[str, Any] | None = None,
        timings: Mapping[str, float] | None = None,
        status: str = "finished",
        *,
        draws_path: str | os.PathLike[str] | None = None,
    ) -> None:
        """Record the end of a run: its status (finished/failed/cancelled), summary and timings.

        Summary and timings are stored as JSON text (numpy scalars/arrays become numbers/lists; inf and
        NaN are written as Python's json writes them, `Infinity`/`NaN`) and come back as dicts.
        """
        if status not in STATUSES or status == "running":
            raise ValueError(f"a run finishes as one of {STATUSES[1:]}, not {status!r}")
        summary_json, timings_json = _to_json(summary), _to_json(timings)
        finished_at = datetime.now(UTC).replace(tzinfo=None)

        def update(con) -> None:
            found = con.execute(
                "UPDATE runs SET status = ?, summary = ?, timings = ?, finished_at = ?, "
                "draws_path = coalesce(?, draws_path) WHERE run_id = ? RETURNING run_id",
                [
                    status,
                    summary_json,
                    timings_json,
                    finished_at,
                    None if draws_path is None else os.fspath(draws_path),
                    run_id,
                ],
            ).fetchall()
            if not found:
                raise RunError(f"no run {run_id!r} in {self.path}; it may have been deleted")

        self._run(update)

    def list_runs(
        self, scenario: str | None = None, status: str | None = None, limit: int | None = 50
    ) -> list[dict[str, Any]]:
        """Runs, newest first, optionally only one scenario's and/or one status; at most `limit`. A
        "running" run whose process on this host is gone is listed as "interrupted" (resume it with
        `evlaunch run ... --resume`)."""
        if status is not None and status not in (*STATUSES, INTERRUPTED):
            raise RunError(f"--status: got {status!r}; expected one of {', '.join((*STATUSES, INTERRUPTED))}")
        where, params = [], []
        if scenario is not None:
            where.append("scenario_name = ?")
            params.append(scenario)
        if status is not None:
            where.append("status = ?")
            params.append("running" if status == INTERRUPTED else status)
        query = f"SELECT {', '.join(_COLUMNS)} FROM runs"
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY created_at DESC, run_id DESC"
        if limit is not None:
            query += f" LIMIT {max(0, int(limit))}"
        rows = self._run(lambda con: con.execute(query, params).fetchall())
        records = [_row_to_dict(row) for row in rows]
        if status in ("running", INTERRUPTED):
            records = [r for r in records if r["status"] == status]
        return records

    def get_run(self, run_id: str) -> dict[str, Any]:
        """The run with this id or unique id prefix (RunError if none or several match)."""
        return self._run(lambda con: _row_to_dict(self._resolve(con, run_id)))

    def delete_run(self, run_id: str) -> str:
        """Delete the run with this id or unique prefix; returns its full id (files on disk are kept)."""

        def delete(con) -> str:
            full_id = self._resolve(con, run_id)[0]
            con.execute("DELETE FROM runs WHERE run_id = ?", [full_id])
            return full_id

        return self._run(delete)

    def _resolve(self, con, prefix: str) -> tuple:
        if not prefix:
            raise RunError("give a run id (or the start of one); `evlaunch runs` lists them")
        rows = con.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id LIMIT 6",
            [prefix],
        ).fetchall()
        if not rows:
            raise RunError(f"no run with id {prefix!r} in {self.path}; `evlaunch runs` lists them")
        exact = [row for row in rows if row[0] == prefix]
        if exact:
            return exact[0]
        if len(rows) > 1:
            shown = ", ".join(row[0] for row in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise RunError(f"run id {prefix!r} is ambiguous: it starts {shown}; give more characters")
        return rows[0]


def _row_to_dict(row: tuple) -> dict[str, Any]:
    record = dict(zip(_COLUMNS, row))
    if record["status"] == "running" and _process_gone(record.get("owner")):
        record["status"] = INTERRUPTED
    record["created_at"] = _utc_iso(record["created_at"])
    record["finished_at"] = _utc_iso(record["finished_at"])
    for key in ("summary", "timings"):
        if record[key] is not None:
            record[key] = json.loads(record[key])
    return record

