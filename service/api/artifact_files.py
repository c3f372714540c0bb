"""How the results routes present artifacts: the JSON entry of one, its file as a download,
and the checkpoint a request names (or the 404 saying which steps there are).

Files are served only if recorded in ``artifacts`` and, resolved, inside the artifact root
(:mod:`service.artifact_paths`): a tampered row is refused (403), a file gone is 410.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi import HTTPException
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from service.api.schemas import ArtifactOut, aware
from service.artifact_paths import UnsafePath, resolve_under
from service.core.config import Settings
from service.db.artifacts import CHECKPOINT, checkpoint_steps, newest_artifact
from service.db.models import Artifact, Job

MEDIA = {".png": "image/png", ".svg": "image/svg+xml", ".json": "application/json",
         ".safetensors": "application/octet-stream"}


def _job_rel(job_id: uuid.UUID, stored: str) -> str:
    prefix = f"{job_id}/"
    return stored[len(prefix):] if stored.startswith(prefix) else stored


def artifact_out(job_id: uuid.UUID, a: Artifact) -> ArtifactOut:
    rel = _job_rel(job_id, a.path)
    return ArtifactOut(kind=a.kind, step=a.step, path=rel, bytes=a.bytes, sha256=a.sha256,
                       created_at=aware(a.created_at),
                       url=f"/api/v1/jobs/{job_id}/artifacts/{rel}")


def artifact_file(settings: Settings, a: Artifact) -> Path:
    """The artifact's file, checked to lie inside the artifact root (410 if it is gone)."""
    try:
        path = resolve_under(settings.artifacts, a.path)
    except UnsafePath as exc:  # a tampered row: refuse rather than follow it
        raise HTTPException(403, f"artifact path refused: {exc}") from None
    if not path.is_file():
        raise HTTPException(410, f"the file of artifact {a.path!r} is no longer stored")
    return path


def serve_artifact(settings: Settings, a: Artifact) -> FileResponse:
    path = artifact_file(settings, a)
    return FileResponse(  # streamed in chunks by Starlette
        path, media_type=MEDIA.get(path.suffix, "application/octet-stream"),
        filename=path.name, headers={"ETag": f'"{a.sha256}"', "X-Vaelab-Sha256": a.sha256,
                                     "X-Vaelab-Step": str(a.step)},
    )


def checkpoint_or_404(session: Session, job: Job, step: int | None) -> Artifact:
    """The checkpoint at ``step`` (None: the latest)."""
    a = newest_artifact(session, job.id, CHECKPOINT, step)
    if a is not None:
        return a
    steps = checkpoint_steps(session, job.id)
    if not steps:
        raise HTTPException(404, f"job {job.id} has no checkpoint yet")
    raise HTTPException(404, f"job {job.id} has no checkpoint at step {step}; steps: {steps}")
