"""The ``artifacts`` table: the files a job wrote (checkpoints, sample and reconstruction
grids, ...), one row each, its path relative to the artifact root as ``<job_id>/<rel>``.

Reads for the results API: a job's artifacts, one by path, the newest of a kind (at a step).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Artifact

CHECKPOINT = "checkpoint"


def job_artifacts(session: Session, job_id: uuid.UUID, kind: str | None = None) -> list[Artifact]:
    """A job's artifacts (of one ``kind``), ordered by kind, step, then insertion."""
    q = select(Artifact).where(Artifact.job_id == job_id)
    if kind is not None:
        q = q.where(Artifact.kind == kind)
    return list(session.scalars(q.order_by(Artifact.kind, Artifact.step, Artifact.id)))


def artifact_by_path(session: Session, job_id: uuid.UUID, rel: str) -> Artifact | None:
    """The artifact stored at ``<job_id>/<rel>`` (``rel`` already checked to be a plain
    relative path)."""
    return session.scalar(select(Artifact).where(Artifact.job_id == job_id,
                                                 Artifact.path == f"{job_id}/{rel}"))


def newest_artifact(session: Session, job_id: uuid.UUID, kind: str,
                    step: int | None = None) -> Artifact | None:
    """The artifact of ``kind`` at the highest step (at ``step`` if given); of two at one
    step, the later written."""
    q = select(Artifact).where(Artifact.job_id == job_id, Artifact.kind == kind)
    if step is not None:
        q = q.where(Artifact.step == step)
    return session.scalar(q.order_by(Artifact.step.desc(), Artifact.id.desc()).limit(1))


def checkpoint_steps(session: Session, job_id: uuid.UUID) -> list[int]:
    """The steps a job has a checkpoint at, ascending (repeats kept, as rows)."""
    return list(session.scalars(
        select(Artifact.step).where(Artifact.job_id == job_id, Artifact.kind == CHECKPOINT)
        .order_by(Artifact.step, Artifact.id)))
