"""The ``artifacts`` table: one row per file a job wrote (checkpoints, sample grids...),
its path relative to the artifact root, so machines that mount the shared volume at
different places agree on it."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from sqlalchemy import Engine, select

from service.db.models import Artifact, utcnow
from service.db.upsert import upsert


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


def latest_checkpoint(engine: Engine, artifact_root: Path, job_id: uuid.UUID) -> str | None:
    """The newest checkpoint file of a job that still exists on disk (None: start afresh)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Artifact.path)
            .where(Artifact.job_id == job_id, Artifact.kind == "checkpoint")
            .order_by(Artifact.step.desc(), Artifact.id.desc())
        ).all()
    for (rel,) in rows:
        path = Path(artifact_root) / rel
        if path.exists():
            return str(path)
    return None
