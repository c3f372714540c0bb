"""Per-step evaluation summaries (``evaluations``): written by the worker's sink, read by
``GET /api/v1/jobs/{id}/rate-distortion`` (and the traversal, for its active units)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from service.db.attempts import hold
from service.db.models import Evaluation, Job, utcnow
from service.db.upsert import upsert


def record_evaluation(engine: Engine, job_id: uuid.UUID, step: int,
                      summary: dict[str, Any], lease: str | None = None,
                      progress: dict[str, Any] | None = None) -> None:
    """Upsert the summary of ``step`` (a resumed run that re-evaluates a step overwrites it),
    with the job's ``progress`` fields (``{summary, timing}``), in one transaction fenced by
    ``lease`` (:class:`service.db.attempts.LeaseLost`: nothing written). Non-finite floats
    are stored as null (strict JSON)."""
    from service.db import jobs as jobs_db
    from vae_engine.io import dumps

    row = {"job_id": job_id, "step": int(step), "summary": json.loads(dumps(summary)),
           "created_at": utcnow()}
    stmt = upsert(engine, Evaluation, row, keys=("job_id", "step"),
                  update=("summary", "created_at"))
    with engine.begin() as conn:
        hold(conn, job_id, lease)
        conn.execute(stmt)
        if progress:
            jobs_db.record_progress(conn, job_id, lease, **progress)  # summary, timing


def evaluations(session: Session, job_id: uuid.UUID) -> list[Evaluation]:
    """Every stored evaluation of a job, by step."""
    return list(session.scalars(
        select(Evaluation).where(Evaluation.job_id == job_id).order_by(Evaluation.step)
    ))


def summaries_by_step(session: Session, job: Job) -> dict[int, dict[str, Any]]:
    """A job's evaluation summaries keyed by step. A job evaluated before the history
    existed (migration 0003) has only ``jobs.summary``: that one, at its step."""
    by_step = {e.step: e.summary for e in evaluations(session, job.id)}
    if not by_step and job.summary:
        by_step = {int(job.summary.get("step") or job.step or 0): job.summary}
    return by_step


def elbo_by_step(engine: Engine, job_id: uuid.UUID) -> dict[int, float]:
    """The test ELBO of each evaluated step of a job (steps whose ELBO is finite)."""
    with engine.connect() as conn:
        rows = conn.execute(select(Evaluation.step, Evaluation.summary)
                            .where(Evaluation.job_id == job_id)).all()
    out = {}
    for step, summary in rows:
        elbo = (summary or {}).get("elbo")
        if isinstance(elbo, int | float):
            out[int(step)] = float(elbo)
    return out


def delete_job_evaluations(session: Session, job_id: uuid.UUID) -> None:
    session.execute(delete(Evaluation).where(Evaluation.job_id == job_id))
