"""Artifact store: files under ``<VAELAB_ARTIFACT_ROOT>/<job_id>/``, each recorded through
:mod:`service.db.artifacts` with its path relative to the artifact root."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from service.db.artifacts import record_artifact
from vae_engine.io import LocalArtifacts


class SqlArtifacts(LocalArtifacts):
    def __init__(self, engine: Any, artifact_root: Path, job_id: uuid.UUID):
        super().__init__(Path(artifact_root) / str(job_id))
        self.engine = engine  # a service.db engine (get_engine)
        self.artifact_root = Path(artifact_root)
        self.job_id = job_id

    def write(self, kind: str, step: int, name: str, data: bytes) -> str:
        path = super().write(kind, step, name, data)
        rel = str(Path(path).resolve().relative_to(self.artifact_root.resolve()))
        record_artifact(self.engine, self.job_id, kind, step, rel, data)
        return path
