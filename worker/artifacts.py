"""Artifact store: files under ``<VAELAB_ARTIFACT_ROOT>/<job_id>/``, each recorded through
:mod:`service.db.artifacts` with its path relative to the artifact root."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from service.core.retention import prune
from service.db.artifacts import CHECKPOINT, record_artifact
from vae_engine.io import LocalArtifacts
from worker.outage import retry_db


class SqlArtifacts(LocalArtifacts):
    """``keep_last``: after each checkpoint, keep only the last N checkpoints plus the
    best-ELBO and the final one (:mod:`service.core.retention`); 0 keeps them all."""

    def __init__(self, engine: Any, artifact_root: Path, job_id: uuid.UUID,
                 keep_last: int = 0, outage_grace_s: float = 0.0):
        super().__init__(Path(artifact_root) / str(job_id))
        self.engine = engine  # a service.db engine (get_engine)
        self.artifact_root = Path(artifact_root)
        self.job_id = job_id
        self.keep_last = keep_last
        self.outage_grace_s = outage_grace_s  # how long a record waits out a database outage

    def write(self, kind: str, step: int, name: str, data: bytes) -> str:
        path = super().write(kind, step, name, data)
        rel = str(Path(path).resolve().relative_to(self.artifact_root.resolve()))
        what = f"job {self.job_id}: {kind} at step {step}"
        retry_db(lambda: record_artifact(self.engine, self.job_id, kind, step, rel, data),
                 self.outage_grace_s, what)
        if kind == CHECKPOINT and self.keep_last > 0:
            retry_db(lambda: prune(self.engine, self.artifact_root, self.job_id,
                                   self.keep_last), self.outage_grace_s, what)
        return path
