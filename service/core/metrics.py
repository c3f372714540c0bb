"""Metric series as the API serves them: a job's series by key, and several jobs' series
aligned on one step axis (reads through :mod:`service.db.metrics`)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from service.db import jobs as jobs_db
from service.db.metrics import Series, read_series
from service.db.models import Job


class JobNotFound(LookupError):
    pass


def default_keys(job: Job) -> list[str]:
    """Every key the job has logged, sorted."""
    return sorted((job.latest_metrics or {}).keys())


def job_series(session: Session, job: Job, keys: list[str] | None, start_step: int | None,
               end_step: int | None, max_points: int) -> list[tuple[str, Series]]:
    """(key, series) per wanted key (default: all of the job's keys), downsampled."""
    wanted = keys if keys is not None else default_keys(job)
    return [(key, read_series(session, job.id, key, start_step, end_step, max_points))
            for key in wanted]


def compare(session: Session, ids: list[uuid.UUID], keys: list[str] | None,
            start_step: int | None, end_step: int | None, max_points: int
            ) -> tuple[list[str], list[int], dict[str, dict[str, list[float | None]]]]:
    """(keys, step axis, {job id: {key: values on the axis}}): the axis is the union of every
    series' steps, null where a job has no point at a step. Keys default to those every job
    has. Raises :class:`JobNotFound`."""
    jobs = []
    for jid in ids:
        job = jobs_db.get_job(session, jid)
        if job is None:
            raise JobNotFound(f"no job {jid}")
        jobs.append(job)
    wanted = keys if keys is not None else sorted(
        set.intersection(*(set(default_keys(j)) for j in jobs)))
    raw: dict[str, dict[str, dict[int, float | None]]] = {}
    steps: set[int] = set()
    for job in jobs:
        per_key = raw[str(job.id)] = {}
        for key, s in job_series(session, job, wanted, start_step, end_step, max_points):
            per_key[key] = dict(zip(s.steps, s.values, strict=True))
            steps.update(s.steps)
    axis = sorted(steps)
    series = {jid: {k: [pts.get(s) for s in axis] for k, pts in per_key.items()}
              for jid, per_key in raw.items()}
    return wanted, axis, series
