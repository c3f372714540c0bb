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
               end_step: int | None, max_points: int, with_ts: bool = False
               ) -> list[tuple[str, Series]]:
    """(key, series) per wanted key (default: all of the job's keys), downsampled; with
    ``with_ts`` each point's wall time too."""
    wanted = keys if keys is not None else default_keys(job)
    return [(key, read_series(session, job.id, key, start_step, end_step, max_points,
                              with_ts=with_ts))
            for key in wanted]


Aligned = dict[str, dict[str, list[float | None]]]  # job id -> key -> values on the axis


def compare(session: Session, ids: list[uuid.UUID], keys: list[str] | None,
            start_step: int | None, end_step: int | None, max_points: int,
            with_ts: bool = False,
            ) -> tuple[list[str], list[int], Aligned, Aligned | None]:
    """(keys, step axis, {job id: {key: values on the axis}}, the same for the points' wall
    times when ``with_ts`` else None): the axis is the union of every series' steps, null
    where a job has no point at a step. Keys default to those every job has. Raises
    :class:`JobNotFound`."""
    jobs = []
    for jid in ids:
        job = jobs_db.get_job(session, jid)
        if job is None:
            raise JobNotFound(f"no job {jid}")
        jobs.append(job)
    wanted = keys if keys is not None else sorted(
        set.intersection(*(set(default_keys(j)) for j in jobs)))
    raw: dict[str, dict[str, dict[int, float | None]]] = {}
    times: dict[str, dict[str, dict[int, float | None]]] = {}
    steps: set[int] = set()
    for job in jobs:
        per_key = raw[str(job.id)] = {}
        per_key_ts = times[str(job.id)] = {}
        for key, s in job_series(session, job, wanted, start_step, end_step, max_points,
                                 with_ts):
            per_key[key] = dict(zip(s.steps, s.values, strict=True))
            if s.ts is not None:
                per_key_ts[key] = dict(zip(s.steps, s.ts, strict=True))
            steps.update(s.steps)
    axis = sorted(steps)

    def on_axis(per_job: dict[str, dict[str, dict[int, float | None]]]) -> Aligned:
        return {jid: {k: [pts.get(s) for s in axis] for k, pts in per_key.items()}
                for jid, per_key in per_job.items()}

    return wanted, axis, on_axis(raw), on_axis(times) if with_ts else None
