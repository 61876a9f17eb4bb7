"""Background runs for the dashboard: one thread per run, progress, cancel.

A job wraps one call of the public `evlaunch.run` (the same code and the same run store as the CLI). At
most `max_parallel` runs simulate at once; later jobs wait as "queued". The job learns its run id when
the store records the run (`on_start`), so a cancelled or failed run can be found there too.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evlaunch.api.run import DEFAULT_CHUNK, RunCancelled, run
from evlaunch.api.scenario import Scenario
from evlaunch.errors import EvlaunchError
from evlaunch.runs.store import RunStore

log = logging.getLogger("evlaunch.web")

JOB_STATUSES = ("queued", "running", "finished", "failed", "cancelled")
MIN_CHUNK = 250  # progress and cancel act between chunks; smaller chunks vectorise less well


def chunk_size_for(draws: int) -> int:
    """About eight progress steps (and chances to cancel) per run, without chunks below MIN_CHUNK draws."""
    return min(DEFAULT_CHUNK, max(MIN_CHUNK, math.ceil(draws / 8)))


def new_job_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


class TooBusy(EvlaunchError):
    """Too many runs are already waiting."""


@dataclass
class Job:
    """One dashboard run; read it through `snapshot()` (other threads update it under `lock`)."""

    id: str
    scenario: str
    draws: int
    seed: int
    out_dir: Path
    changes: list[str]
    status: str = "queued"
    phase: str = "waiting for a free slot"
    done: int = 0
    run_id: str | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None

    def update(self, **values: Any) -> None:
        with self.lock:
            for key, value in values.items():
                setattr(self, key, value)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            now = time.time()
            end = self.finished or now
            return {
                "id": self.id,
                "scenario": self.scenario,
                "status": self.status,
                "phase": self.phase,
                "draws": self.draws,
                "seed": self.seed,
                "done": self.done,
                "total": self.draws,
                "fraction": self.done / self.draws if self.draws else 0.0,
                "run_id": self.run_id,
                "error": self.error,
                "changes": list(self.changes),
                "elapsed_s": round(end - (self.started or self.created), 2),
                "cancel_requested": self.cancel.is_set(),
            }


class JobManager:
    """Starts runs in background threads and keeps their state for the progress endpoint."""

    def __init__(self, store: RunStore, runs_dir: Path, *, max_parallel: int = 1, max_waiting: int = 8,
                 keep: int = 200):
        self.store = store
        self.runs_dir = Path(runs_dir)
        self.max_waiting = max_waiting
        self.keep = keep
        self._slots = threading.Semaphore(max_parallel)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def submit(self, scenario_name: str, scenario_path: Path, scenario_text: str, draws: int, seed: int,
               changes: list[str] | None = None) -> Job:
        """Queue a run of `scenario_text` (named by `scenario_path`, so relative data paths resolve)."""
        with self._lock:
            if self._closing.is_set():
                raise TooBusy("the dashboard is shutting down")
            waiting = sum(1 for job in self._jobs.values() if job.status in ("queued", "running"))
            if waiting >= self.max_waiting:
                raise TooBusy(f"{waiting} runs are queued or running; wait for one to finish or cancel one")
            job_id = new_job_id()
            while job_id in self._jobs:
                job_id = new_job_id()
            job = Job(job_id, scenario_name, draws, seed, self.runs_dir / job_id, list(changes or []))
            self._jobs[job_id] = job
            self._forget_old()
        job.thread = threading.Thread(target=self._work, args=(job, Path(scenario_path), scenario_text),
                                      name=f"evlaunch-run-{job_id}", daemon=True)
        job.thread.start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda job: job.created, reverse=True)

    def job_for_run(self, run_id: str) -> Job | None:
        with self._lock:
            return next((job for job in self._jobs.values() if job.run_id == run_id), None)

    def cancel(self, job_id: str) -> Job | None:
        job = self.get(job_id)
        if job is not None:
            job.cancel.set()
            with job.lock:
                if job.status in ("queued", "running"):
                    job.phase = "cancelling"
        return job

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel every run and wait up to `timeout` seconds for their threads to stop."""
        self._closing.set()
        jobs = self.jobs()
        for job in jobs:
            job.cancel.set()
        deadline = time.monotonic() + timeout
        for job in jobs:
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.monotonic()))

    def _forget_old(self) -> None:
        ended = [job for job in self._jobs.values() if job.status not in ("queued", "running")]
        for job in sorted(ended, key=lambda job: job.created)[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[job.id]

    def _work(self, job: Job, scenario_path: Path, scenario_text: str) -> None:
        while not self._slots.acquire(timeout=0.2):
            if job.cancel.is_set():
                job.update(status="cancelled", phase="cancelled before it started", finished=time.time())
                return
        try:
            if job.cancel.is_set():
                job.update(status="cancelled", phase="cancelled before it started", finished=time.time())
                return
            job.update(status="running", phase="preparing the model", started=time.time())

            def progress(done: int, total: int) -> None:
                phase = "simulating draws" if done < total else "summarising and writing the report"
                job.update(done=done, phase=phase)

            try:
                scenario = Scenario.from_text(scenario_text, str(scenario_path), scenario_path.parent,
                                              file=scenario_path)
                result = run(scenario, draws=job.draws, seed=job.seed, chunk_size=chunk_size_for(job.draws),
                             out=job.out_dir, store=self.store, report=True, progress=progress, cancel=job.cancel,
                             on_start=lambda run_id: job.update(run_id=run_id))
            except RunCancelled:
                job.update(status="cancelled", phase="cancelled", finished=time.time())
            except EvlaunchError as error:
                job.update(status="failed", phase="failed", error=str(error), finished=time.time())
            except Exception as error:  # a bug: keep the server alive, show it, log the traceback
                log.exception("run %s failed", job.id)
                job.update(status="failed", phase="failed", finished=time.time(),
                           error=f"internal error: {type(error).__name__}: {error}")
            else:
                job.update(status="finished", phase="finished", run_id=result.run_id, done=job.draws,
                           finished=time.time())
        finally:
            self._slots.release()
