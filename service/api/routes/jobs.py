"""Jobs: submit, list, inspect, cancel."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status

from service.api.deps import (
    CurrentUser,
    EnqueueDep,
    JobDep,
    SessionDep,
    SettingsDep,
    owner_or_admin,
)
from service.api.errors import spec_error_list
from service.api.params import Offset
from service.api.responses import BY_ID, QUOTA, conflict, invalid
from service.api.schemas import JobCreate, JobDetail, JobList, job_detail, job_summary
from service.core import access
from service.core import jobs as jobops
from service.core.datasets import UnsafeUserFile
from service.core.uploads import name_uploaded
from service.db import attempts
from service.db import jobs as jobs_db
from service.db.artifacts import job_bytes

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
Sort = Literal[tuple(f"{d}{c}" for c in jobs_db.SORTS for d in ("", "-"))]  # type: ignore[valid-type]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobDetail,
             responses={**invalid("Invalid spec: every bad field is listed."), **QUOTA})
def submit_job(
    body: JobCreate, session: SessionDep, settings: SettingsDep, user: CurrentUser,
    enqueue: EnqueueDep,
) -> JobDetail:
    from vae_engine.errors import SpecError

    try:
        spec = jobops.resolve_spec(name_uploaded(session, settings, body.spec), settings)
    except SpecError as exc:
        raise HTTPException(422, spec_error_list(exc)) from None
    except UnsafeUserFile as exc:
        raise HTTPException(422, [{"field": f"spec.{exc.field}", "message": str(exc)}]) from None
    try:
        job = jobops.submit(session, settings, enqueue, spec, owner=user.name,
                            priority=body.priority, tags=body.tags,
                            device=body.resources.device)
    except jobops.QuotaExceeded as exc:
        raise HTTPException(429, str(exc)) from None
    return job_detail(job)


@router.get("", response_model=JobList)
def list_jobs(
    session: SessionDep, settings: SettingsDep, user: CurrentUser,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    tag: str | None = None,
    owner: str | None = None,
    sweep: Annotated[uuid.UUID | None, Query(description="Jobs of this sweep.")] = None,
    dataset: Annotated[str | None, Query(description="spec dataset.name")] = None,
    arch: Annotated[str | None, Query(description="spec model.arch")] = None,
    likelihood: Annotated[str | None, Query(description="spec likelihood.kind")] = None,
    kl: Annotated[str | None, Query(description="spec kl.schedule.kind")] = None,
    active: Annotated[bool, Query(description="Only queued and running jobs.")] = False,
    ids: Annotated[str | None, Query(description="Comma-separated job ids.")] = None,
    with_spec: Annotated[bool, Query(description="Include each job's spec.")] = False,
    sort: Annotated[Sort, Query(description="Column; prefix '-' for descending.")
                    ] = "-created_at",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[Offset, Query()] = 0,
) -> JobList:
    spec = {k: v for k, v in (("dataset", dataset), ("arch", arch),
                              ("likelihood", likelihood), ("kl", kl)) if v}
    rows, total = jobs_db.list_jobs(
        session, status=status_, owner=access.list_owner(user, owner, settings.read_scope),
        sweep_id=sweep, tag=tag, limit=limit, offset=offset, spec=spec, sort=sort.lstrip("-"),
        descending=sort.startswith("-"),
        statuses=["queued", "running"] if active else None, ids=_ids(ids) if ids else None)
    return JobList(items=[job_summary(j, with_spec) for j in rows], total=total, limit=limit,
                   offset=offset)


def _ids(csv: str) -> list[uuid.UUID]:
    try:
        return [uuid.UUID(s.strip()) for s in csv.split(",") if s.strip()]
    except ValueError:
        raise HTTPException(422, [{"field": "ids", "message": "comma-separated job ids"}]
                            ) from None


@router.get("/{job_id}", response_model=JobDetail, responses=BY_ID)
def get_job(job: JobDep, session: SessionDep) -> JobDetail:
    return job_detail(job, storage_bytes=job_bytes(session, job.id),
                      history=attempts.history(session, job.id))


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses=conflict("The job is queued or running."))
def delete_job(job: JobDep, session: SessionDep, settings: SettingsDep,
               user: CurrentUser) -> None:
    """A finished job with its metrics, evaluations and files (its owner or an admin)."""
    owner_or_admin(user, job.owner, "delete", "job")
    try:
        jobops.delete(session, settings, job)
    except jobops.JobActive as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/{job_id}/cancel", response_model=JobDetail,
             responses=conflict("The job has already finished."))
def cancel_job(job: JobDep, session: SessionDep, user: CurrentUser) -> JobDetail:
    """Its owner or an admin."""
    owner_or_admin(user, job.owner, "cancel", "job")
    try:
        updated = jobops.cancel(session, job)
        return job_detail(updated, history=attempts.history(session, updated.id))
    except jobops.JobFinished as exc:
        raise HTTPException(409, str(exc)) from None
