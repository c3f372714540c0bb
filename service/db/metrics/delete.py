"""Removing a job's points and rollups (a deleted job: :func:`service.core.jobs.delete`)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete
from sqlalchemy.orm import Session

from service.db.models import Metric, MetricRollup


def delete_job_metrics(session: Session, job_id: uuid.UUID) -> int:
    """Delete every point and rollup of a job; returns the number of points removed."""
    session.execute(delete(MetricRollup).where(MetricRollup.job_id == job_id))
    res = session.execute(delete(Metric).where(Metric.job_id == job_id))
    return res.rowcount or 0
