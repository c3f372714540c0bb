"""Writing metric points: conflict-ignoring batched inserts into ``metrics`` that maintain
``metric_rollups`` in the same transaction.

``ON CONFLICT DO NOTHING`` on the primary key (job_id, key, step) makes a resumed run's
replayed points harmless. Only the points the insert actually wrote (``RETURNING``: a
replayed point is not among them) are folded into ``metric_rollups`` per (key, level,
bucket): min/max points (the rule of :mod:`.buckets`), first NULL step and step extent merge
idempotently, ``n`` adds only new points.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Uuid, bindparam, func, select, text

from service.db.metrics import pgarrays
from service.db.metrics.buckets import Extremes, pg_agg, pg_step, pg_value, sql_wins
from service.db.metrics.pgarrays import float8_array, int4_array
from service.db.models import ROLLUP_SHIFTS, Metric
from service.db.upsert import insert_ignore

# Merge a new partial rollup (``excluded``) into the stored one. Portable (PostgreSQL and
# SQLite); SET sees the row before the update.
_OLD, _NEW = "metric_rollups", "excluded"
_MN = sql_wins("min", f"{_NEW}.min_value", f"{_NEW}.min_step", f"{_OLD}.min_value",
               f"{_OLD}.min_step")
_MX = sql_wins("max", f"{_NEW}.max_value", f"{_NEW}.max_step", f"{_OLD}.max_value",
               f"{_OLD}.max_step")
_MERGE = f"""
ON CONFLICT (job_id, key, level, bucket) DO UPDATE SET
  min_value = CASE WHEN {_MN} THEN excluded.min_value ELSE metric_rollups.min_value END,
  min_step = CASE WHEN {_MN} THEN excluded.min_step ELSE metric_rollups.min_step END,
  max_value = CASE WHEN {_MX} THEN excluded.max_value ELSE metric_rollups.max_value END,
  max_step = CASE WHEN {_MX} THEN excluded.max_step ELSE metric_rollups.max_step END,
  null_step = CASE WHEN metric_rollups.null_step IS NULL
                     OR excluded.null_step < metric_rollups.null_step
                   THEN excluded.null_step ELSE metric_rollups.null_step END,
  first_step = CASE WHEN excluded.first_step < metric_rollups.first_step
                    THEN excluded.first_step ELSE metric_rollups.first_step END,
  last_step = CASE WHEN excluded.last_step > metric_rollups.last_step
                   THEN excluded.last_step ELSE metric_rollups.last_step END,
  n = metric_rollups.n + excluded.n
"""

_ROLLUP_COLS = ("job_id, key, level, bucket, min_value, min_step, max_value, max_step, "
                "null_step, first_step, last_step, n")

# PostgreSQL: one statement inserts the batch and folds what it wrote into every level: the
# finest level from the points, each coarser one from the finest level's partials. The batch
# arrives as arrays bound as parameters, built in binary form by :mod:`.pgarrays`: the
# distinct keys, and per point the key's 1-based index, its step, value (NaN for NULL) and
# stamp; the job id is a scalar. One round trip, no staging table, no per-point Python
# object on the way (the temporary table + COPY it replaces took 4 round trips per batch).
_FINE = ROLLUP_SHIFTS[0]
_PG_INSERT_AND_ROLL = f"""
WITH ins AS (
  INSERT INTO metrics (job_id, key, step, value, ts)
  SELECT %(job_id)b::uuid, (%(keys)s::varchar[])[p.k], p.step,
         NULLIF(p.value, 'NaN'::float8), p.ts
  FROM unnest(%(k)b::int4[], %(steps)b::int4[], %(values)b::float8[], %(ts)b::float8[])
       AS p(k, step, value, ts)
  ON CONFLICT DO NOTHING
  RETURNING job_id, key, step, value
), fine AS (
  SELECT job_id, key, step >> {_FINE} AS bucket,
         {pg_agg("min", "value", "step")} AS mn, {pg_agg("max", "value", "step")} AS mx,
         min(step) FILTER (WHERE value IS NULL) AS null_step,
         min(step) AS first_step, max(step) AS last_step, count(*) AS n
  FROM ins GROUP BY job_id, key, step >> {_FINE}
), agg AS (
  SELECT job_id, key, {_FINE} AS level, bucket, mn, mx, null_step, first_step, last_step, n
  FROM fine
""" + "".join(f"""  UNION ALL
  SELECT job_id, key, {k}, bucket >> {k - _FINE}, min(mn), min(mx), min(null_step),
         min(first_step), max(last_step), sum(n)
  FROM fine GROUP BY job_id, key, bucket >> {k - _FINE}
""" for k in ROLLUP_SHIFTS[1:]) + f""")
INSERT INTO metric_rollups ({_ROLLUP_COLS})
SELECT job_id, key, level, bucket, {pg_value("min", "mn")}, {pg_step("mn")},
       {pg_value("max", "mx")}, {pg_step("mx")}, null_step, first_step, last_step, n
FROM agg ORDER BY job_id, key, level, bucket  -- one lock order: concurrent writers can't deadlock
{_MERGE}
"""

_SQLITE_ROLL = text(
    f"INSERT INTO metric_rollups ({_ROLLUP_COLS}) VALUES (:job_id, :key, :level, :bucket, "
    ":min_value, :min_step, :max_value, :max_step, :null_step, :first_step, :last_step, :n)"
    + _MERGE
).bindparams(bindparam("job_id", type_=Uuid))  # stored as hex text on SQLite

_SQLITE_INSERT: Any = None


def insert_points(conn: Connection, job_id: uuid.UUID, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts of key, step, value, ts; value None = non-finite) of one job,
    ignoring points already stored, and fold the new ones into the rollups. The caller owns
    the transaction."""
    if rows:
        insert_columns(conn, job_id, [r["key"] for r in rows], [r["step"] for r in rows],
                       [r["value"] for r in rows], [r["ts"] for r in rows])


def insert_columns(conn: Connection, job_id: uuid.UUID, keys: Sequence[str],
                   steps: Sequence[int], values: Sequence[float | None],
                   ts: float | Sequence[float]) -> None:
    """:func:`insert_points` for a batch given as columns (what the worker's sink keeps):
    point i is (keys[i], steps[i], values[i]) stamped ``ts`` (one stamp for the batch, or one
    per point)."""
    n = len(steps)
    if not n:
        return
    stamps = [ts] * n if isinstance(ts, (int, float)) else list(ts)
    if conn.dialect.name != "postgresql":
        _sqlite_insert_and_roll(conn, job_id, [
            {"job_id": job_id, "key": k, "step": s, "value": v, "ts": t}
            for k, s, v, t in zip(keys, steps, values, stamps, strict=True)])
        return
    index: dict[str, int] = {}
    k = [index.setdefault(key, len(index) + 1) for key in keys]
    dbapi = conn.connection  # the pooled connection: its info lives as long as it does
    if not dbapi.info.get("vaelab_pgarrays"):
        pgarrays.register(dbapi.driver_connection)
        dbapi.info["vaelab_pgarrays"] = True
    # through SQLAlchemy, not a bare driver cursor: the engine's events put the statement
    # under the watchdog's deadline and drop the connection if the server stops answering
    conn.exec_driver_sql(_PG_INSERT_AND_ROLL, {
        "job_id": job_id, "keys": list(index), "k": int4_array(k),
        "steps": int4_array(steps), "values": float8_array(values),
        "ts": float8_array(stamps)})


def last_ts(engine: Engine, job_id: uuid.UUID) -> float | None:
    """The newest batch stamp of a job (the SSE cursor a resumed attempt must exceed)."""
    with engine.connect() as conn:
        return conn.scalar(select(func.max(Metric.ts)).where(Metric.job_id == job_id))


def rollup_rows(
    job_id: uuid.UUID, points: list[tuple[str, int, float | None]]
) -> list[dict[str, Any]]:
    """Partial rollups of newly written ``(key, step, value)`` points, one per (key, level,
    bucket), in the shape of ``metric_rollups`` rows (what the PostgreSQL statement computes)."""
    out: dict[tuple[str, int, int], Extremes] = {}
    for key, step, value in points:
        for level in ROLLUP_SHIFTS:
            b = (key, level, step >> level)
            ext = out.get(b)
            if ext is None:
                ext = out[b] = Extremes()
            ext.add(step, value)
    return [{"job_id": job_id, "key": key, "level": level, "bucket": bucket, **ext.as_row()}
            for (key, level, bucket), ext in out.items()]


def _sqlite_insert_and_roll(conn: Connection, job_id: uuid.UUID,
                            rows: list[dict[str, Any]]) -> None:
    global _SQLITE_INSERT
    if _SQLITE_INSERT is None:  # built once: compiling it per batch costs as much as the batch
        _SQLITE_INSERT = insert_ignore(conn.engine, Metric.__table__).returning(
            Metric.key, Metric.step, Metric.value)
    written = conn.execute(_SQLITE_INSERT, rows).all()
    partial = rollup_rows(job_id, [(k, s, v) for k, s, v in written])
    if partial:
        conn.execute(_SQLITE_ROLL, partial)
