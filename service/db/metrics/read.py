"""Reading metric series, downsampled so that spikes survive.

Downsampling is bucketed min/max (the M4 idea without first/last): the step range
[lo, hi] (the requested window, else the series' first and last step) is cut into
``max_points // 2`` equal-width buckets and each bucket contributes the point holding its
minimum and the point holding its maximum, so a one-step spike is always drawn. Which point
stands for a bucket is the rule of :mod:`.buckets`, shared with the writer (the earliest step
wins ties; non-finite values are stored as NULL; a bucket holding only NULLs keeps its first
point). A range holding at most ``max_points`` points is returned whole.

Wide ranges read ``metric_rollups`` (per-bucket min/max at widths 2^4, 2^8, 2^12 steps,
written by :mod:`.write`) instead of every point: starting at the coarsest level whose
buckets are at least ``ROLLUP_MIN_RATIO`` times finer than the output buckets, a rollup
bucket whose points all fall in one output bucket (and inside [lo, hi]) stands for them; one
that straddles an output-bucket boundary or a window edge is replaced by its 16 children one
level down, and at the finest level by its raw points. The min/max of a union is the min/max
of the parts' min/max, so the answer is exactly the raw scan's. Narrow ranges use the exact
scan of the points.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Uuid, bindparam, func, select, text
from sqlalchemy.orm import Session

from service.db.metrics.buckets import (
    Extremes,
    decode,
    pg_agg,
    representatives,
    sql_order,
)
from service.db.models import ROLLUP_SHIFTS, Metric

# a rollup level is used only when its buckets are at least this many times finer than the
# output buckets: then about one rollup bucket in this many straddles a boundary and descends
ROLLUP_MIN_RATIO = 4


@dataclass
class Series:
    steps: list[int] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    points_in_range: int = 0
    downsampled: bool = False
    # per returned point, its own wall time (``metrics.ts``: when the worker's sink wrote its
    # batch); only when asked for (``with_ts``). A downsampled bucket's points are real
    # points, so each carries its exact stamp.
    ts: list[float | None] | None = None


def minmax_downsample(
    steps: Sequence[int],
    values: Sequence[float | None],
    max_points: int,
    lo: int | None = None,
    hi: int | None = None,
) -> tuple[list[int], list[float | None]]:
    """Keep at most ``max_points`` points: per step bucket, the min and the max point.

    ``steps`` must be increasing and inside [lo, hi] (default [steps[0], steps[-1]]).
    Buckets are ``max_points // 2`` equal slices of [lo, hi]; output is in step order.
    """
    n = len(steps)
    if n <= max_points:
        return list(steps), list(values)
    n_buckets = max(1, max_points // 2)
    lo = steps[0] if lo is None else lo
    hi = steps[-1] if hi is None else hi
    span = hi - lo + 1
    out_steps: list[int] = []
    out_values: list[float | None] = []
    i = 0
    while i < n:
        b = (steps[i] - lo) * n_buckets // span
        ext = Extremes()
        j = i
        while j < n and (steps[j] - lo) * n_buckets // span == b:
            ext.add(steps[j], values[j])
            j += 1
        for step, value in representatives(ext.min_value, ext.min_step, ext.max_value,
                                           ext.max_step, ext.null_step):
            out_steps.append(step)
            out_values.append(value)
        i = j
    return out_steps, out_values


def step_bounds(
    session: Session, job_id: uuid.UUID, key: str
) -> tuple[int | None, int | None]:
    row = session.execute(
        select(func.min(Metric.step), func.max(Metric.step)).where(
            Metric.job_id == job_id, Metric.key == key
        )
    ).one()
    return row[0], row[1]


_PG_MINMAX = text(
    """
    SELECT (step - :lo)::bigint * :nb / :span AS b,
           {mn} AS mn, {mx} AS mx,
           min(step) FILTER (WHERE value IS NULL) AS null_step,
           count(*) AS n
    FROM metrics
    WHERE job_id = :job_id AND key = :key AND step BETWEEN :lo AND :hi
    GROUP BY b
    """.format(mn=pg_agg("min", "value", "step"), mx=pg_agg("max", "value", "step"))
)


def read_series(
    session: Session,
    job_id: uuid.UUID,
    key: str,
    start_step: int | None,
    end_step: int | None,
    max_points: int,
    use_rollups: bool = True,
    with_ts: bool = False,
) -> Series:
    """The points of one series in [start_step, end_step], at most ``max_points`` of them;
    with ``with_ts`` also each point's wall time.

    ``use_rollups=False`` forces the exact scan of every point (the reference in tests).
    """
    out = _read_series(session, job_id, key, start_step, end_step, max_points, use_rollups)
    if with_ts:
        out.ts = point_times(session, job_id, key, out.steps)
    return out


def point_times(session: Session, job_id: uuid.UUID, key: str, steps: list[int]
                ) -> list[float | None]:
    """The stored ``ts`` of each of ``steps`` (points of the series), in the same order: one
    primary-key lookup per point, so a downsampled read stays as cheap as its output."""
    if not steps:
        return []
    found: dict[int, float] = {}
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(_PG_TIMES, {"job_id": job_id, "key": key, "steps": steps})
        found.update((st, ts) for st, ts in rows)
    else:
        for i in range(0, len(steps), 10_000):  # under SQLite's limit of bound parameters
            rows = session.execute(select(Metric.step, Metric.ts).where(
                Metric.job_id == job_id, Metric.key == key,
                Metric.step.in_(steps[i:i + 10_000])))
            found.update((st, ts) for st, ts in rows)
    return [found.get(s) for s in steps]  # None: deleted meanwhile


_PG_TIMES = text(
    "SELECT step, ts FROM metrics WHERE job_id = :job_id AND key = :key "
    "AND step = ANY(CAST(:steps AS int4[]))"
).bindparams(bindparam("job_id", type_=Uuid))


def _read_series(
    session: Session,
    job_id: uuid.UUID,
    key: str,
    start_step: int | None,
    end_step: int | None,
    max_points: int,
    use_rollups: bool,
) -> Series:
    lo, hi = start_step, end_step
    if lo is None or hi is None:
        first, last = step_bounds(session, job_id, key)
        if first is None:
            return Series()
        lo = first if lo is None else lo
        hi = last if hi is None else hi
    if hi < lo:
        return Series()
    nb = max(1, max_points // 2)
    shifts = rollup_shifts(hi - lo + 1, nb) if use_rollups else []
    if shifts:
        buckets = _rollup_buckets(session, job_id, key, lo, hi, nb, shifts)
    elif session.get_bind().dialect.name == "postgresql":
        buckets = _pg_buckets(session, job_id, key, lo, hi, nb)
    else:
        return _raw_series(session, job_id, key, lo, hi, max_points)
    total = sum(b[5] for b in buckets)
    if total <= max_points:  # few points: all of them, as the raw scan returns
        return _raw_series(session, job_id, key, lo, hi, max_points)
    points: dict[int, float | None] = {}
    for mn_v, mn_s, mx_v, mx_s, null_step, _n in buckets:
        points.update(representatives(mn_v, mn_s, mx_v, mx_s, null_step))
    steps = sorted(points)
    return Series(steps, [points[s] for s in steps], total, len(steps) < total)


def rollup_shifts(span: int, nb: int) -> list[int]:
    """The rollup levels (shifts, coarsest first) to read for ``nb`` output buckets over
    ``span`` steps; empty when even the finest level is too coarse (read the raw points)."""
    usable = [k for k in ROLLUP_SHIFTS if (1 << k) * ROLLUP_MIN_RATIO * nb <= span]
    return sorted(usable, reverse=True)


# a bucket tuple: (min value, its step, max value, its step, first NULL step, points)
Bucket = tuple[float | None, int | None, float | None, int | None, int | None, int]


def _raw_series(
    session: Session, job_id: uuid.UUID, key: str, lo: int, hi: int, max_points: int
) -> Series:
    rows = session.execute(
        select(Metric.step, Metric.value)
        .where(Metric.job_id == job_id, Metric.key == key, Metric.step.between(lo, hi))
        .order_by(Metric.step)
    ).all()
    steps = [r[0] for r in rows]
    values = [r[1] for r in rows]
    ds_steps, ds_values = minmax_downsample(steps, values, max_points, lo, hi)
    return Series(ds_steps, ds_values, len(rows), len(ds_steps) < len(rows))


def _pg_buckets(
    session: Session, job_id: uuid.UUID, key: str, lo: int, hi: int, nb: int
) -> list[Bucket]:
    rows = session.execute(
        _PG_MINMAX,
        {"lo": lo, "hi": hi, "nb": nb, "span": hi - lo + 1, "job_id": job_id, "key": key},
    ).all()
    return [(*decode("min", mn), *decode("max", mx), null_step, int(n))
            for _b, mn, mx, null_step, n in rows]


def _ob(col: str) -> str:
    """SQL: the output bucket of a step."""
    return f"(CAST({col} - :lo AS BIGINT) * :nb / :span)"


def _rollup_sql(shifts: list[int], postgresql: bool) -> str:
    """One query over the rollup levels ``shifts`` (coarsest first): ``l0`` the coarsest
    rollups in [lo, hi], ``l<i>`` the children of the non-whole ones, ``raw`` the points of
    the non-whole finest ones; then per output bucket the min point, the max point, the first
    NULL step and the number of points (PostgreSQL: ARRAY aggregates; SQLite: windows)."""
    def whole(t: str) -> str:
        return (f"CASE WHEN {t}.first_step >= :lo AND {t}.last_step <= :hi AND "
                f"{_ob(t + '.first_step')} = {_ob(t + '.last_step')} THEN 1 ELSE 0 END")

    cols = "c.bucket, c.first_step, c.min_value, c.min_step, c.max_value, c.max_step, " \
           "c.null_step, c.n"
    k0 = shifts[0]
    ctes = [f"""l0 AS (SELECT {cols}, {whole("c")} AS whole FROM metric_rollups c
        WHERE c.job_id = :job_id AND c.key = :key AND c.level = {k0}
          AND c.bucket BETWEEN (:lo >> {k0}) AND (:hi >> {k0}))"""]
    # The children of a parent: one index range scan per parent. On PostgreSQL a LATERAL
    # subquery fenced by OFFSET 0 keeps the parent's range an index condition even when the
    # planner has no statistics (a fresh table: it then estimates one row everywhere and
    # would rather scan the whole level once per parent, filtering on the range).
    def children(table: str, cols: str, cond: str, lo_: str, hi_: str, parent: str) -> str:
        if postgresql:
            return (f"FROM {parent} p CROSS JOIN LATERAL (SELECT {cols} FROM {table} c "
                    f"WHERE {cond} AND {lo_} <= c.{hi_[0]} AND c.{hi_[0]} <= {hi_[1]} "
                    "OFFSET 0) AS c WHERE p.whole = 0")
        return (f"FROM {parent} p JOIN {table} c ON {cond} AND c.{hi_[0]} BETWEEN {lo_} "
                f"AND {hi_[1]} WHERE p.whole = 0")

    big, small = ("GREATEST", "LEAST") if postgresql else ("max", "min")
    rcols = cols + ", c.last_step"
    for i, k in enumerate(shifts[1:], 1):
        d = shifts[i - 1] - k
        src = children(
            "metric_rollups", rcols, f"c.job_id = :job_id AND c.key = :key AND c.level = {k}",
            f"{big}(CAST(p.bucket AS BIGINT) << {d}, :lo >> {k})",
            ("bucket", f"{small}((CAST(p.bucket + 1 AS BIGINT) << {d}) - 1, :hi >> {k})"),
            f"l{i - 1}")
        ctes.append(f"l{i} AS (SELECT {cols}, {whole('c')} AS whole {src})")
    last, kl = len(shifts) - 1, shifts[-1]
    src = children(
        "metrics", "c.step, c.value", "c.job_id = :job_id AND c.key = :key",
        f"{big}(CAST(p.bucket AS BIGINT) << {kl}, :lo)",
        ("step", f"{small}((CAST(p.bucket + 1 AS BIGINT) << {kl}) - 1, :hi)"), f"l{last}")
    ctes.append(f"raw AS (SELECT c.step, c.value {src})")
    parts = [f"""SELECT {_ob("first_step")} AS ob, min_value, min_step, max_value, max_step,
        null_step, n FROM l{i} WHERE whole = 1""" for i in range(len(shifts))]
    parts.append(f"""SELECT {_ob("step")} AS ob, value, step, value, step,
        CASE WHEN value IS NULL THEN step END, 1 FROM raw""")
    pieces = "\n      UNION ALL ".join(parts)
    if postgresql:  # one hash aggregate; the ARRAY carries the step along
        return "WITH " + ",\n".join(ctes) + f"""
    SELECT ob, {pg_agg("min", "min_value", "min_step")},
           {pg_agg("max", "max_value", "max_step")},
           min(null_step), sum(n)
    FROM ({pieces}) AS pieces GROUP BY ob"""
    ctes.append(f"pieces AS ({pieces})")
    ctes.append(f"""mins AS (SELECT ob, min_value AS v, min_step AS s, row_number() OVER
        (PARTITION BY ob ORDER BY {sql_order("min", "min_value", "min_step")}) AS rn
        FROM pieces WHERE min_value IS NOT NULL)""")
    ctes.append(f"""maxs AS (SELECT ob, max_value AS v, max_step AS s, row_number() OVER
        (PARTITION BY ob ORDER BY {sql_order("max", "max_value", "max_step")}) AS rn
        FROM pieces WHERE max_value IS NOT NULL)""")
    return "WITH " + ",\n".join(ctes) + """
    SELECT 0 AS kind, ob, v, s, 0 AS n FROM mins WHERE rn = 1
    UNION ALL SELECT 1, ob, v, s, 0 FROM maxs WHERE rn = 1
    UNION ALL SELECT 2, ob, NULL, min(null_step), sum(n) FROM pieces GROUP BY ob"""


_ROLLUP_QUERIES: dict[tuple[tuple[int, ...], bool], Any] = {}


def _rollup_buckets(
    session: Session, job_id: uuid.UUID, key: str, lo: int, hi: int, nb: int,
    shifts: list[int],
) -> list[Bucket]:
    pg = session.get_bind().dialect.name == "postgresql"
    q = _ROLLUP_QUERIES.get((tuple(shifts), pg))
    if q is None:
        q = _ROLLUP_QUERIES[tuple(shifts), pg] = text(_rollup_sql(shifts, pg)).bindparams(
            bindparam("job_id", type_=Uuid))
    params = {"lo": lo, "hi": hi, "nb": nb, "span": hi - lo + 1, "job_id": job_id, "key": key}
    if pg:
        # the planner cannot estimate the descents and costs the query in the millions, which
        # triggers JIT compilation: ~0.7 s to save nothing on a query that reads ~20k rows
        session.execute(text("SET LOCAL jit = off"))
        return [(*decode("min", mn), *decode("max", mx), null_step, int(n))
                for _ob, mn, mx, null_step, n in session.execute(q, params).all()]
    mins: dict[int, tuple[float, int]] = {}
    maxs: dict[int, tuple[float, int]] = {}
    rest: dict[int, tuple[int | None, int]] = {}
    for kind, ob, v, s, n in session.execute(q, params).all():
        if kind == 0:
            mins[ob] = (v, s)
        elif kind == 1:
            maxs[ob] = (v, s)
        else:
            rest[ob] = (s, int(n))
    out: list[Bucket] = []
    for ob, (null_step, n) in rest.items():
        if ob in mins:
            out.append((*mins[ob], *maxs[ob], null_step, n))
        else:
            out.append((None, None, None, None, null_step, n))
    return out


def batches_after(session: Session, job_id: uuid.UUID, cursor: float, limit: int
                  ) -> tuple[list[tuple[float, list[dict[str, Any]]]], bool]:
    """The SSE stream's read: up to ``limit`` flushed batches with ``ts > cursor``, in order,
    each as (ts, [{key, step, value}]), and whether more remain."""
    stamps = session.scalars(
        select(Metric.ts).where(Metric.job_id == job_id, Metric.ts > cursor)
        .group_by(Metric.ts).order_by(Metric.ts).limit(limit)
    ).all()
    batches: list[tuple[float, list[dict[str, Any]]]] = []
    if stamps:
        rows = session.execute(
            select(Metric.ts, Metric.key, Metric.step, Metric.value)
            .where(Metric.job_id == job_id, Metric.ts > cursor, Metric.ts <= stamps[-1])
            .order_by(Metric.ts, Metric.step, Metric.key)
        ).all()
        for ts, key, step, value in rows:
            if not batches or batches[-1][0] != ts:
                batches.append((ts, []))
            batches[-1][1].append({"key": key, "step": step, "value": value})
    return batches, len(stamps) == limit
