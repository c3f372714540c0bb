"""The ``artifacts`` table: one row per file a job wrote (checkpoints, sample and
reconstruction grids, summaries), its path relative to the artifact root as ``<job_id>/<rel>``,
so machines that mount the shared volume at different places agree on it.

Writes come from the worker's artifact store (:func:`record_artifact`); reads serve the
results API and the resume of a job (:func:`latest_checkpoint`).
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.db.models import Artifact, utcnow
from service.db.upsert import upsert

CHECKPOINT = "checkpoint"

# --------------------------------------------------------------------------- writes


def record_artifact(engine: Engine, job_id: uuid.UUID, kind: str, step: int, rel_path: str,
                    data: bytes) -> None:
    """Upsert the row of a file just written (a resumed run that rewrites a path replaces
    its row)."""
    row = {
        "job_id": job_id, "kind": kind, "step": step, "path": rel_path,
        "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "created_at": utcnow(),
    }
    stmt = upsert(engine, Artifact, row, keys=("job_id", "path"),
                  update=("kind", "step", "bytes", "sha256", "created_at"))
    with engine.begin() as conn:
        conn.execute(stmt)


# --------------------------------------------------------------------------- reads


def latest_checkpoint(engine: Engine, artifact_root: Path, job_id: uuid.UUID) -> str | None:
    """The newest checkpoint file of a job that still exists on disk (None: start afresh)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Artifact.path)
            .where(Artifact.job_id == job_id, Artifact.kind == CHECKPOINT)
            .order_by(Artifact.step.desc(), Artifact.id.desc())
        ).all()
    for (rel,) in rows:
        path = Path(artifact_root) / rel
        if path.exists():
            return str(path)
    return None


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
