"""Totals over the ``metric_rollups`` table (Prometheus): the number of points stored,
read from the coarsest rollup level (a few rows per job and key) rather than by counting
``metrics`` itself."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.models import ROLLUP_SHIFTS, MetricRollup


def points_stored(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(MetricRollup.n), 0))
                              .where(MetricRollup.level == max(ROLLUP_SHIFTS))) or 0)
