"""Artifact store: files under ``<VAELAB_ARTIFACT_ROOT>/<job_id>/``, one ``artifacts`` row each.

Paths are recorded relative to the artifact root, so machines that mount the shared volume
at different places agree on them.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from sqlalchemy import Engine, select

from service.db.models import Artifact, utcnow
from service.db.upsert import upsert
from vae_engine.io import LocalArtifacts


class SqlArtifacts(LocalArtifacts):
    def __init__(self, engine: Engine, artifact_root: Path, job_id: uuid.UUID):
        super().__init__(Path(artifact_root) / str(job_id))
        self.engine = engine
        self.artifact_root = Path(artifact_root)
        self.job_id = job_id

    def write(self, kind: str, step: int, name: str, data: bytes) -> str:
        path = super().write(kind, step, name, data)
        rel = str(Path(path).resolve().relative_to(self.artifact_root.resolve()))
        row = {
            "job_id": self.job_id, "kind": kind, "step": step, "path": rel,
            "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "created_at": utcnow(),
        }
        stmt = upsert(self.engine, Artifact, row, keys=("job_id", "path"),
                      update=("kind", "step", "bytes", "sha256", "created_at"))
        with self.engine.begin() as conn:
            conn.execute(stmt)
        return path


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
