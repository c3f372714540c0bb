"""The ``artifacts`` table: one row per file a job wrote (checkpoints, sample and
reconstruction grids, summaries), its path relative to the artifact root as ``<job_id>/<rel>``,
so machines that mount the shared volume at different places agree on it.

Writes come from the worker's artifact store (:func:`record_artifact`); reads serve the
results API and the resume of a job (:func:`latest_checkpoint`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from service.db.attempts import hold
from service.db.models import Artifact, Job, utcnow
from service.db.upsert import upsert

CHECKPOINT = "checkpoint"

# --------------------------------------------------------------------------- writes


def record_artifact(engine: Engine, job_id: uuid.UUID, kind: str, step: int, rel_path: str,
                    data: bytes, lease: str | None = None,
                    publish: Callable[[], None] | None = None) -> None:
    """Upsert the row of a file (a resumed run that rewrites a path replaces its row), fenced
    by ``lease``: :class:`service.db.attempts.LeaseLost` and nothing written once it is gone.
    ``publish`` (the rename of the file from its temporary name) runs inside the
    transaction, after the lease check, which holds the job's row until the commit: the
    file appears only while the attempt holds the lease."""
    row = {
        "job_id": job_id, "kind": kind, "step": step, "path": rel_path,
        "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "created_at": utcnow(),
    }
    stmt = upsert(engine, Artifact, row, keys=("job_id", "path"),
                  update=("kind", "step", "bytes", "sha256", "created_at"))
    with engine.begin() as conn:
        hold(conn, job_id, lease)
        conn.execute(stmt)
        if publish is not None:
            publish()


def delete_artifact_rows(engine: Engine, ids: list[int], job_id: uuid.UUID | None = None,
                         lease: str | None = None) -> None:
    """Forget the rows of files about to be removed (the retention's pruning), fenced by
    ``lease`` (of job ``job_id``) as :func:`record_artifact` is: an attempt that lost its
    lease gets :class:`service.db.attempts.LeaseLost` and deletes nothing."""
    if ids:
        with engine.begin() as conn:
            if lease is not None:
                hold(conn, job_id, lease)
            conn.execute(delete(Artifact).where(Artifact.id.in_(ids)))


def delete_job_artifacts(session: Session, job_id: uuid.UUID) -> None:
    session.execute(delete(Artifact).where(Artifact.job_id == job_id))


# --------------------------------------------------------------------------- reads


def checkpoint_rows(engine: Engine, job_id: uuid.UUID) -> list[tuple[int, int, str]]:
    """(id, step, path) of a job's checkpoints, oldest step first."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(Artifact.id, Artifact.step, Artifact.path)
            .where(Artifact.job_id == job_id, Artifact.kind == CHECKPOINT)
            .order_by(Artifact.step, Artifact.id))]


def job_bytes(session: Session, job_id: uuid.UUID) -> int:
    """The bytes of every file a job holds."""
    return int(session.scalar(select(func.coalesce(func.sum(Artifact.bytes), 0))
                              .where(Artifact.job_id == job_id)) or 0)


def bytes_by_owner(session: Session) -> list[tuple[str, int, int]]:
    """(owner, jobs holding files, bytes) per owner, largest first."""
    rows = session.execute(
        select(Job.owner, func.count(func.distinct(Artifact.job_id)), func.sum(Artifact.bytes))
        .join(Job, Job.id == Artifact.job_id).group_by(Job.owner)
        .order_by(func.sum(Artifact.bytes).desc()))
    return [(o, int(n), int(b or 0)) for o, n, b in rows]



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
