"""The worker's MetricSink: batched, conflict-ignoring inserts into ``metrics``.

One INSERT per batch of >= ``batch_points`` points or every ``batch_seconds`` (whichever
comes first; the heartbeat thread also calls :meth:`flush_if_due` so a quiet run's points
still land within the interval). ``ON CONFLICT DO NOTHING`` makes a resumed run's replayed
points harmless. Each batch gets one ``ts`` (unix seconds, strictly increasing per sink),
the cursor the SSE stream resumes from.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.dialects import postgresql, sqlite

from service.db.models import Job, Metric
from vae_engine.io import MetricSink, dumps


def insert_ignore(engine: Engine, table: Any):  # noqa: ANN201
    """A dialect-specific INSERT ... ON CONFLICT DO NOTHING."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def _copy_ignore(conn: Any, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: COPY the batch into a temporary table, then INSERT ... ON CONFLICT DO
    NOTHING from it: several times faster than multi-row INSERTs for 1,000-point batches."""
    cur = conn.connection.driver_connection.cursor()
    try:
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS metrics_in "
            "(job_id uuid, key varchar(200), step integer, value double precision, "
            "ts double precision) ON COMMIT DELETE ROWS"
        )
        with cur.copy("COPY metrics_in (job_id, key, step, value, ts) FROM STDIN") as copy:
            for r in rows:
                copy.write_row((r["job_id"], r["key"], r["step"], r["value"], r["ts"]))
        cur.execute(
            "INSERT INTO metrics (job_id, key, step, value, ts) "
            "SELECT job_id, key, step, value, ts FROM metrics_in ON CONFLICT DO NOTHING"
        )
    finally:
        cur.close()


class SqlMetricSink(MetricSink):
    def __init__(
        self,
        engine: Engine,
        job_id: uuid.UUID,
        lease: str | None = None,
        batch_points: int = 1000,
        batch_seconds: float = 2.0,
    ):
        self.engine = engine
        self.job_id = job_id
        self.lease = lease
        self.batch_points = batch_points
        self.batch_seconds = batch_seconds
        self.step = 0
        self.total_steps: int | None = None
        self.points_written = 0
        self._rows: list[dict[str, Any]] = []
        self._latest: dict[str, dict[str, Any]] = {}
        self._latest_dirty = False
        self._last_flush = time.monotonic()
        self._last_ts = 0.0
        self._lock = threading.Lock()
        self._stmt = insert_ignore(engine, Metric.__table__)

    # ------------------------------------------------------------------ MetricSink
    def start(self, total_steps: int, start_step: int) -> None:
        self.total_steps, self.step = total_steps, start_step
        self._update_job(total_steps=total_steps, resume_step=start_step, step=start_step)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        with self._lock:
            self.step = max(self.step, step)
            for key, value in metrics.items():
                v = float(value)
                v = v if math.isfinite(v) else None
                self._rows.append({"job_id": self.job_id, "key": key, "step": step, "value": v})
                self._latest[key] = {"step": step, "value": v}
            self._latest_dirty = True
            if len(self._rows) >= self.batch_points or self._due():
                self._flush_locked()

    def log_eval(self, step: int, summary: dict[str, Any]) -> None:
        import json

        self._update_job(summary=json.loads(dumps(summary)))

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    # ------------------------------------------------------------------ helpers
    def flush_if_due(self) -> None:
        with self._lock:
            if self._due():
                self._flush_locked()

    def _due(self) -> bool:
        return time.monotonic() - self._last_flush >= self.batch_seconds

    def _flush_locked(self) -> None:
        self._last_flush = time.monotonic()
        if not self._rows and not self._latest_dirty:
            return
        rows, self._rows = self._rows, []
        ts = max(time.time(), self._last_ts + 1e-6)
        self._last_ts = ts
        for r in rows:
            r["ts"] = ts
        with self.engine.begin() as conn:
            if rows and self.engine.dialect.name == "postgresql":
                _copy_ignore(conn, rows)
            elif rows:
                conn.execute(self._stmt, rows)
            stmt = update(Job).where(Job.id == self.job_id)
            if self.lease is not None:
                stmt = stmt.where(Job.lease == self.lease)
            conn.execute(stmt.values(latest_metrics=dict(self._latest), step=self.step))
        self._latest_dirty = False
        self.points_written += len(rows)

    def _update_job(self, **values: Any) -> None:
        stmt = update(Job).where(Job.id == self.job_id)
        if self.lease is not None:
            stmt = stmt.where(Job.lease == self.lease)
        with self.engine.begin() as conn:
            conn.execute(stmt.values(**values))
