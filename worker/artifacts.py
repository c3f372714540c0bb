"""Artifact store: files under ``<VAELAB_ARTIFACT_ROOT>/<job_id>/``, each recorded through
:mod:`service.db.artifacts` with its path relative to the artifact root.

Fenced by the attempt's lease: a file is written under a temporary name, its row committed
under the lease check, and the file renamed into place inside that transaction. An attempt
that lost its lease gets :class:`service.db.attempts.LeaseLost` and leaves no file; the
pruning of old checkpoints after each one is fenced the same way (an attempt paused between
its record and its pruning and resumed after a takeover deletes nothing).
"""

from __future__ import annotations

import os
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
                 keep_last: int = 0, lease: str | None = None,
                 outage_grace_s: float = 0.0):
        super().__init__(Path(artifact_root) / str(job_id))
        self.engine = engine  # a service.db engine (get_engine)
        self.artifact_root = Path(artifact_root)
        self.job_id = job_id
        self.keep_last = keep_last
        self.lease = lease
        self.outage_grace_s = outage_grace_s  # how long a record waits out a database outage

    def write(self, kind: str, step: int, name: str, data: bytes) -> str:
        if "/" in name or "\\" in name or name in {"", ".", ".."}:
            raise ValueError(f"bad artifact name {name!r}")
        folder = self.root / self.FOLDERS.get(kind, kind)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        # a name of this attempt's own: a stale attempt's temporary file never collides
        tmp = path.with_name(f".{path.name}.{(self.lease or 'local')[:8]}.tmp")
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        rel = str(path.resolve().relative_to(self.artifact_root.resolve()))
        what = f"job {self.job_id}: {kind} at step {step}"

        def publish() -> None:  # a retried record finds the file already in place
            if tmp.exists():
                tmp.replace(path)

        try:
            retry_db(lambda: record_artifact(self.engine, self.job_id, kind, step, rel, data,
                                             lease=self.lease, publish=publish),
                     self.outage_grace_s, what)
        finally:
            tmp.unlink(missing_ok=True)  # gone after the rename; left only by a failure
        if kind == CHECKPOINT and self.keep_last > 0:
            retry_db(lambda: prune(self.engine, self.artifact_root, self.job_id,
                                   self.keep_last, self.lease), self.outage_grace_s, what)
        return str(path)
