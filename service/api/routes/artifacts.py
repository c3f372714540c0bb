"""``/api/v1/jobs/{id}/artifacts``: every file a job wrote, listed and downloaded by path."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from service.api.artifact_files import artifact_out, serve_artifact
from service.api.deps import JobDep, SessionDep, SettingsDep
from service.api.responses import BAD_REQUEST, BY_ID, FILES
from service.api.schemas import ArtifactList
from service.artifact_paths import UnsafePath, check_relative
from service.db.artifacts import artifact_by_path, job_artifacts

router = APIRouter(prefix="/api/v1/jobs", tags=["results"],
                   responses={**BY_ID, **BAD_REQUEST, **FILES})


@router.get("/{job_id}/artifacts", response_model=ArtifactList)
def list_artifacts(job: JobDep, session: SessionDep) -> ArtifactList:
    rows = job_artifacts(session, job.id)
    return ArtifactList(job_id=job.id, items=[artifact_out(job.id, a) for a in rows],
                        total_bytes=sum(a.bytes for a in rows))


@router.get("/{job_id}/artifacts/{path:path}",
            responses={400: {"description": "Not a plain relative path."},
                       404: {"description": "No such artifact."}})
def get_artifact(job: JobDep, path: str, session: SessionDep,
                 settings: SettingsDep) -> FileResponse:
    try:
        rel = check_relative(path)
    except UnsafePath as exc:
        raise HTTPException(400, f"bad artifact path: {exc}") from None
    a = artifact_by_path(session, job.id, str(rel))
    if a is None:
        raise HTTPException(404, f"job {job.id} has no artifact {str(rel)!r}")
    return serve_artifact(settings, a)
