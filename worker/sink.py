"""The worker's MetricSink: batched, conflict-ignoring inserts into ``metrics`` that also
maintain ``metric_rollups``.

One INSERT per batch of >= ``batch_points`` points or every ``batch_seconds`` (whichever
comes first; the heartbeat thread also calls :meth:`flush_if_due` so a quiet run's points
still land within the interval). ``ON CONFLICT DO NOTHING`` makes a resumed run's replayed
points harmless. Each batch gets one ``ts`` (unix seconds, strictly increasing per sink),
the cursor the SSE stream resumes from.

In the same transaction, the points the insert actually wrote (``RETURNING``: a replayed point
is not among them) are folded into ``metric_rollups`` per (key, level, bucket): min/max with
their steps, first NULL step and step extent merge idempotently, ``n`` adds only new points.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from typing import Any

from sqlalchemy import Engine, Uuid, bindparam, func, select, text, update

from service.db.models import ROLLUP_SHIFTS, Job, Metric
from service.db.upsert import insert_ignore
from vae_engine.io import MetricSink, dumps

# Merge a new partial rollup (``excluded``) into the stored one: lexicographic min of
# (min_value, min_step), max of (max_value, -max_step) — the earliest step wins ties —, first
# NULL step, step extent. Portable (PostgreSQL and SQLite); SET sees the row before the update.
_MERGE = """
ON CONFLICT (job_id, key, level, bucket) DO UPDATE SET
  min_value = CASE WHEN {mn} THEN excluded.min_value ELSE metric_rollups.min_value END,
  min_step = CASE WHEN {mn} THEN excluded.min_step ELSE metric_rollups.min_step END,
  max_value = CASE WHEN {mx} THEN excluded.max_value ELSE metric_rollups.max_value END,
  max_step = CASE WHEN {mx} THEN excluded.max_step ELSE metric_rollups.max_step END,
  null_step = CASE WHEN metric_rollups.null_step IS NULL
                     OR excluded.null_step < metric_rollups.null_step
                   THEN excluded.null_step ELSE metric_rollups.null_step END,
  first_step = CASE WHEN excluded.first_step < metric_rollups.first_step
                    THEN excluded.first_step ELSE metric_rollups.first_step END,
  last_step = CASE WHEN excluded.last_step > metric_rollups.last_step
                   THEN excluded.last_step ELSE metric_rollups.last_step END,
  n = metric_rollups.n + excluded.n
""".format(
    mn="(metric_rollups.min_value IS NULL OR excluded.min_value < metric_rollups.min_value"
       " OR (excluded.min_value = metric_rollups.min_value"
       " AND excluded.min_step < metric_rollups.min_step))",
    mx="(metric_rollups.max_value IS NULL OR excluded.max_value > metric_rollups.max_value"
       " OR (excluded.max_value = metric_rollups.max_value"
       " AND excluded.max_step < metric_rollups.max_step))",
)

_ROLLUP_COLS = ("job_id, key, level, bucket, min_value, min_step, max_value, max_step, "
                "null_step, first_step, last_step, n")

# PostgreSQL: one statement inserts the batch and folds what it wrote into every level: the
# finest level from the points, each coarser one from the finest level's partials.
_FINE = ROLLUP_SHIFTS[0]
_PG_INSERT_AND_ROLL = f"""
WITH ins AS (
  INSERT INTO metrics (job_id, key, step, value, ts)
  SELECT job_id, key, step, value, ts FROM metrics_in ON CONFLICT DO NOTHING
  RETURNING job_id, key, step, value
), fine AS (
  SELECT job_id, key, step >> {_FINE} AS bucket,
         min(ARRAY[value, step::float8]) FILTER (WHERE value IS NOT NULL) AS mn,
         max(ARRAY[value, -step::float8]) FILTER (WHERE value IS NOT NULL) AS mx,
         min(step) FILTER (WHERE value IS NULL) AS null_step,
         min(step) AS first_step, max(step) AS last_step, count(*) AS n
  FROM ins GROUP BY job_id, key, step >> {_FINE}
), agg AS (
  SELECT job_id, key, {_FINE} AS level, bucket, mn, mx, null_step, first_step, last_step, n
  FROM fine
""" + "".join(f"""  UNION ALL
  SELECT job_id, key, {k}, bucket >> {k - _FINE}, min(mn), max(mx), min(null_step),
         min(first_step), max(last_step), sum(n)
  FROM fine GROUP BY job_id, key, bucket >> {k - _FINE}
""" for k in ROLLUP_SHIFTS[1:]) + f""")
INSERT INTO metric_rollups ({_ROLLUP_COLS})
SELECT job_id, key, level, bucket, mn[1], mn[2]::int, mx[1], (-mx[2])::int, null_step,
       first_step, last_step, n
FROM agg ORDER BY job_id, key, level, bucket  -- one lock order: concurrent writers can't deadlock
{_MERGE}
"""

_SQLITE_ROLL = text(
    f"INSERT INTO metric_rollups ({_ROLLUP_COLS}) VALUES (:job_id, :key, :level, :bucket, "
    ":min_value, :min_step, :max_value, :max_step, :null_step, :first_step, :last_step, :n)"
    + _MERGE
).bindparams(bindparam("job_id", type_=Uuid))  # stored as hex text on SQLite


def _copy_ignore(conn: Any, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: COPY the batch into a temporary table, then INSERT ... ON CONFLICT DO
    NOTHING from it (several times faster than multi-row INSERTs for 1,000-point batches),
    folding the inserted points into the rollups in the same statement."""
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
        cur.execute(_PG_INSERT_AND_ROLL)
    finally:
        cur.close()


def rollup_rows(
    job_id: uuid.UUID, points: list[tuple[str, int, float | None]]
) -> list[dict[str, Any]]:
    """Partial rollups of newly written ``(key, step, value)`` points, one per (key, level,
    bucket), in the shape of ``metric_rollups`` rows (the same rule as the PostgreSQL SQL)."""
    out: dict[tuple[str, int, int], dict[str, Any]] = {}
    for key, step, value in points:
        for level in ROLLUP_SHIFTS:
            b = (key, level, step >> level)
            r = out.get(b)
            if r is None:
                r = out[b] = {"job_id": job_id, "key": key, "level": level, "bucket": b[2],
                              "min_value": None, "min_step": None, "max_value": None,
                              "max_step": None, "null_step": None, "first_step": step,
                              "last_step": step, "n": 0}
            r["n"] += 1
            r["first_step"] = min(r["first_step"], step)
            r["last_step"] = max(r["last_step"], step)
            if value is None:
                if r["null_step"] is None or step < r["null_step"]:
                    r["null_step"] = step
                continue
            if r["min_value"] is None or (value, step) < (r["min_value"], r["min_step"]):
                r["min_value"], r["min_step"] = value, step
            if r["max_value"] is None or (value, -step) > (r["max_value"], -r["max_step"]):
                r["max_value"], r["max_step"] = value, step
    return list(out.values())


def _sqlite_insert_and_roll(conn: Any, stmt: Any, job_id: uuid.UUID,
                            rows: list[dict[str, Any]]) -> None:
    written = conn.execute(
        stmt.returning(Metric.key, Metric.step, Metric.value), rows
    ).all()
    partial = rollup_rows(job_id, [(k, s, v) for k, s, v in written])
    if partial:
        conn.execute(_SQLITE_ROLL, partial)


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
        # the SSE cursor must keep increasing across attempts: a resumed attempt on a host
        # whose clock is behind the last one's would otherwise write ts below a client's
        # Last-Event-ID, and the stream (ts > cursor) would never send those points
        with self.engine.connect() as conn:
            last = conn.scalar(select(func.max(Metric.ts)).where(Metric.job_id == self.job_id))
        with self._lock:
            self._last_ts = max(self._last_ts, last or 0.0)
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
        from service.db.evaluations import record_evaluation  # the per-step history

        record_evaluation(self.engine, self.job_id, step, summary)

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
        # the buffer is cleared only once the transaction has committed: a failed insert
        # (the database is away) keeps the points, in order, for the next flush. The caller
        # holds self._lock, so nothing is appended meanwhile.
        rows = list(self._rows)
        ts = max(time.time(), self._last_ts + 1e-6)
        self._last_ts = ts
        for r in rows:
            r["ts"] = ts
        with self.engine.begin() as conn:
            if rows and self.engine.dialect.name == "postgresql":
                _copy_ignore(conn, rows)
            elif rows:
                _sqlite_insert_and_roll(conn, self._stmt, self.job_id, rows)
            stmt = update(Job).where(Job.id == self.job_id)
            if self.lease is not None:
                stmt = stmt.where(Job.lease == self.lease)
            conn.execute(stmt.values(latest_metrics=dict(self._latest), step=self.step))
        del self._rows[: len(rows)]
        self._latest_dirty = False
        self.points_written += len(rows)

    def _update_job(self, **values: Any) -> None:
        stmt = update(Job).where(Job.id == self.job_id)
        if self.lease is not None:
            stmt = stmt.where(Job.lease == self.lease)
        with self.engine.begin() as conn:
            conn.execute(stmt.values(**values))
