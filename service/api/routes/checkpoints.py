"""``/api/v1/jobs/{id}/checkpoints``: a job's checkpoints, listed, and one downloaded by step
(or ``latest``)."""

from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from service.api.artifact_files import artifact_out, checkpoint_or_404, serve_artifact
from service.api.deps import JobDep, SessionDep, SettingsDep
from service.api.params import INT32_MAX
from service.api.responses import BY_ID, FILES
from service.api.schemas import ArtifactOut
from service.db.artifacts import CHECKPOINT, job_artifacts

router = APIRouter(prefix="/api/v1/jobs", tags=["results"],
                   responses={**BY_ID, **FILES})


ASCII_STEP = re.compile(r"[0-9]{1,10}")


def _parse_step(step: str) -> int | None:
    """ASCII digits only: ``str.isdigit`` accepts "²" and ``int`` reads "٣" as 3."""
    if step == "latest":
        return None
    if not ASCII_STEP.fullmatch(step) or int(step) > INT32_MAX:
        raise HTTPException(422, [{"field": "step",
                                   "message": "an integer step (ASCII digits) or 'latest'"}])
    return int(step)


@router.get("/{job_id}/checkpoints", response_model=list[ArtifactOut])
def list_checkpoints(job: JobDep, session: SessionDep) -> list[ArtifactOut]:
    return [artifact_out(job.id, a) for a in job_artifacts(session, job.id, CHECKPOINT)]


@router.get("/{job_id}/checkpoints/{step}",
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "safetensors weights with a JSON header: "
                             "vae_engine.load_checkpoint(path) rebuilds the model."}})
def download_checkpoint(job: JobDep, step: str, session: SessionDep,
                        settings: SettingsDep) -> FileResponse:
    """``step`` is an integer or ``latest``."""
    return serve_artifact(settings, checkpoint_or_404(session, job, _parse_step(step)))
