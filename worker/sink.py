"""The worker's MetricSink: buffers the engine's points and writes them in batches through
:mod:`service.db.metrics` (conflict-ignoring insert + rollups), with the job's progress in
the same transaction.

One batch per >= ``batch_points`` points or every ``batch_seconds`` (whichever comes first;
the heartbeat thread also calls :meth:`flush_if_due` so a quiet run's points still land
within the interval). Each batch gets one ``ts`` (unix seconds, strictly increasing per
sink), the cursor the SSE stream resumes from.

Every write is fenced by the attempt's lease (the lease check runs first in the batch's
transaction): once the lease is gone the sink raises
:class:`service.db.attempts.LeaseLost`, sets :attr:`lost`, drops its buffer and writes
nothing more.

Through a database outage the points stay buffered and training goes on; a batch is tried
again every ``batch_seconds``; other writes (progress, evaluations) are retried. Only an
outage longer than ``outage_grace_s`` raises (0: the first failure raises).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from typing import Any

from service.db import jobs as jobs_db
from service.db import metrics as metrics_db
from service.db.attempts import LeaseLost
from service.db.evaluations import record_evaluation
from service.db.session import UNAVAILABLE
from vae_engine.io import MetricSink, dumps
from worker.eta import EtaClock
from worker.outage import retry_db

log = logging.getLogger(__name__)


class SqlMetricSink(MetricSink):
    def __init__(
        self,
        engine: Any,  # a service.db engine (get_engine)
        job_id: uuid.UUID,
        lease: str | None = None,
        batch_points: int = 1000,
        batch_seconds: float = 2.0,
        outage_grace_s: float = 0.0,
    ):
        self.engine = engine
        self.job_id = job_id
        self.lease = lease
        self.batch_points = batch_points
        self.batch_seconds = batch_seconds
        self.step = 0
        self.total_steps: int | None = None
        self.points_written = 0
        # the buffered points as columns (no per-point dict: building them cost as much as
        # writing them)
        self._keys: list[str] = []
        self._steps: list[int] = []
        self._values: list[float | None] = []
        self._latest: dict[str, dict[str, Any]] = {}
        self._latest_dirty = False
        self._last_flush = time.monotonic()
        self._last_ts = 0.0
        self._lock = threading.Lock()
        self.eta = EtaClock()
        self.lost = False  # the lease is gone: nothing more is written
        self.outage_grace_s = outage_grace_s
        self._outage_since: float | None = None

    # ------------------------------------------------------------------ MetricSink
    def start(self, total_steps: int, start_step: int) -> None:
        self.total_steps, self.step = total_steps, start_step
        self.eta.start(total_steps, start_step)
        # the SSE cursor must keep increasing across attempts: a resumed attempt on a host
        # whose clock is behind the last one's would otherwise write ts below a client's
        # Last-Event-ID, and the stream (ts > cursor) would never send those points
        last = self._retry(lambda: metrics_db.last_ts(self.engine, self.job_id), "start")
        with self._lock:
            self._last_ts = max(self._last_ts, last or 0.0)
        self._fenced(self._retry, lambda: jobs_db.record_progress_now(
            self.engine, self.job_id, self.lease, total_steps=total_steps,
            resume_step=start_step, step=start_step), "progress")

    def plan(self, eval_steps: list[int]) -> None:
        self.eta.planned(eval_steps)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        with self._lock:
            if not any(k.startswith("eval/") for k in metrics):
                self.eta.stepped(step)
            self.step = max(self.step, step)
            keys, steps, values, latest = self._keys, self._steps, self._values, self._latest
            for key, value in metrics.items():
                v = float(value)
                if not math.isfinite(v):
                    v = None
                keys.append(key)
                steps.append(step)
                values.append(v)
                latest[key] = {"step": step, "value": v}
            self._latest_dirty = True
            if len(steps) >= self.batch_points or self._due():
                self._flush_tolerant()

    def log_eval(self, step: int, summary: dict[str, Any]) -> None:
        self.eta.evaluated_at(step)
        # the per-step history and the job's latest summary, in one fenced transaction
        self._fenced(self._retry, lambda: record_evaluation(
            self.engine, self.job_id, step, summary, self.lease,
            {"summary": json.loads(dumps(summary)), "timing": self.eta.snapshot(step)}),
            "evaluation")

    def flush(self) -> None:
        with self._lock:
            self._retry(self._flush_locked, "metric flush")

    # ------------------------------------------------------------------ helpers
    def flush_if_due(self) -> None:
        """The heartbeat thread's flush: a lost lease only sets :attr:`lost` here (the
        training thread's next ``should_stop`` sees it)."""
        with self._lock:
            if self._due():
                try:
                    self._flush_tolerant()
                except LeaseLost:
                    pass

    def _fenced(self, write, *args, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003
        if self.lost:
            raise LeaseLost(f"job {self.job_id}: lease lost; not writing")
        try:
            write(*args, **kwargs)
        except LeaseLost:
            self._lose()
            raise

    def _lose(self) -> None:
        self.lost = True
        self._keys, self._steps, self._values = [], [], []
        self._latest_dirty = False

    def _retry(self, fn, what: str):  # noqa: ANN001, ANN202
        return retry_db(fn, self.outage_grace_s, f"job {self.job_id}: {what}")

    def _flush_tolerant(self) -> None:
        """A due batch: written, or kept for the next try while the database is away (for
        at most ``outage_grace_s``)."""
        try:
            self._flush_locked()
        except UNAVAILABLE:
            now = time.monotonic()
            if self._outage_since is None:
                self._outage_since = now
                log.warning("job %s: database unavailable; keeping %d metric points and "
                            "training on", self.job_id, len(self._steps))
            if now - self._outage_since >= self.outage_grace_s:
                raise
            return
        if self._outage_since is not None:
            log.warning("job %s: database back after %.1f s; metrics written", self.job_id,
                        time.monotonic() - self._outage_since)
            self._outage_since = None

    def _due(self) -> bool:
        return time.monotonic() - self._last_flush >= self.batch_seconds

    def _flush_locked(self) -> None:
        self._last_flush = time.monotonic()
        if self.lost:
            raise LeaseLost(f"job {self.job_id}: lease lost; not writing")
        n = len(self._steps)
        if not n and not self._latest_dirty:
            return
        # the buffer is cleared only once the transaction has committed: a failed insert
        # (the database is away) keeps the points, in order, for the next flush. The caller
        # holds self._lock, so nothing is appended meanwhile.
        ts = max(time.time(), self._last_ts + 1e-6)
        self._last_ts = ts
        try:
            with self.engine.begin() as conn:
                # the lease check first: it locks the job's row until the points commit
                jobs_db.record_progress(conn, self.job_id, self.lease,
                                        latest_metrics=dict(self._latest), step=self.step,
                                        timing=self.eta.snapshot(self.step))
                metrics_db.insert_columns(conn, self.job_id, self._keys, self._steps,
                                          self._values, ts)
        except LeaseLost:
            self._lose()
            raise
        self._keys, self._steps, self._values = [], [], []
        self._latest_dirty = False
        self.points_written += n
