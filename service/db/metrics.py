"""Reading metric series, downsampled so that spikes survive.

Downsampling is bucketed min/max (the M4 idea without first/last): the step range is cut
into ``max_points // 2`` equal-width buckets and each bucket contributes the point holding
its minimum and the point holding its maximum, so a one-step spike is always drawn.
PostgreSQL does it in SQL (``min(ARRAY[value, step])`` carries the step along with the
extreme); SQLite, the small embedded store, fetches the rows and uses the same rule here.
Non-finite values are stored as NULL; a bucket holding only NULLs keeps its first point.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from service.db.models import Metric


@dataclass
class Series:
    steps: list[int] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    points_in_range: int = 0
    downsampled: bool = False


def minmax_downsample(
    steps: Sequence[int], values: Sequence[float | None], max_points: int
) -> tuple[list[int], list[float | None]]:
    """Keep at most ``max_points`` points: per step bucket, the min and the max point.

    ``steps`` must be increasing. Buckets are ``max_points // 2`` equal slices of
    [steps[0], steps[-1]]; output is in step order.
    """
    n = len(steps)
    if n <= max_points:
        return list(steps), list(values)
    n_buckets = max(1, max_points // 2)
    lo, span = steps[0], steps[-1] - steps[0] + 1
    out: list[int] = []
    i = 0
    while i < n:
        b = (steps[i] - lo) * n_buckets // span
        j, i_min, i_max, i_none = i, -1, -1, -1
        while j < n and (steps[j] - lo) * n_buckets // span == b:
            v = values[j]
            if v is None:
                if i_none < 0:
                    i_none = j
            else:
                if i_min < 0 or v < values[i_min]:
                    i_min = j
                if i_max < 0 or v > values[i_max]:
                    i_max = j
            j += 1
        keep = sorted({i_min, i_max}) if i_min >= 0 else [i_none]
        out.extend(keep)
        i = j
    return [steps[k] for k in out], [values[k] for k in out]


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
           min(ARRAY[value, step::float8]) FILTER (WHERE value IS NOT NULL) AS mn,
           max(ARRAY[value, step::float8]) FILTER (WHERE value IS NOT NULL) AS mx,
           min(step) FILTER (WHERE value IS NULL) AS null_step,
           count(*) AS n
    FROM metrics
    WHERE job_id = :job_id AND key = :key AND step BETWEEN :lo AND :hi
    GROUP BY b
    """
)


def read_series(
    session: Session,
    job_id: uuid.UUID,
    key: str,
    start_step: int | None,
    end_step: int | None,
    max_points: int,
) -> Series:
    """The points of one series in [start_step, end_step], at most ``max_points`` of them."""
    lo, hi = start_step, end_step
    if lo is None or hi is None:
        first, last = step_bounds(session, job_id, key)
        if first is None:
            return Series()
        lo = first if lo is None else lo
        hi = last if hi is None else hi
    if hi < lo:
        return Series()
    if session.get_bind().dialect.name == "postgresql":
        return _pg_series(session, job_id, key, lo, hi, max_points)
    rows = session.execute(
        select(Metric.step, Metric.value)
        .where(Metric.job_id == job_id, Metric.key == key, Metric.step.between(lo, hi))
        .order_by(Metric.step)
    ).all()
    steps = [r[0] for r in rows]
    values = [r[1] for r in rows]
    ds_steps, ds_values = minmax_downsample(steps, values, max_points)
    return Series(ds_steps, ds_values, len(rows), len(ds_steps) < len(rows))


def _pg_series(
    session: Session, job_id: uuid.UUID, key: str, lo: int, hi: int, max_points: int
) -> Series:
    nb = max(1, max_points // 2)
    rows = session.execute(
        _PG_MINMAX,
        {"lo": lo, "hi": hi, "nb": nb, "span": hi - lo + 1, "job_id": job_id, "key": key},
    ).all()
    points: dict[int, float | None] = {}
    total = 0
    for _b, mn, mx, null_step, n in rows:
        total += n
        if mn is None:
            points[null_step] = None
            continue
        points[int(mn[1])] = mn[0]
        points[int(mx[1])] = mx[0]
    steps = sorted(points)
    return Series(steps, [points[s] for s in steps], total, len(steps) < total)
