"""Jobs: submit, list, inspect, cancel."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import func, select

from service.api.deps import CurrentUser, EnqueueDep, JobDep, SessionDep, SettingsDep
from service.api.errors import spec_error_list
from service.api.schemas import JobCreate, JobDetail, JobList, job_detail, job_summary
from service.core import jobs as jobops
from service.core.datasets import UnsafeUserFile, confine_dataset
from service.db.models import TERMINAL, Job, JobTag

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobDetail,
             responses={422: {"description": "Invalid spec: every bad field is listed."}})
def submit_job(
    body: JobCreate, session: SessionDep, settings: SettingsDep, owner: CurrentUser,
    enqueue: EnqueueDep,
) -> JobDetail:
    from vae_engine.errors import SpecError
    from vae_engine.spec import parse_spec

    try:
        spec = parse_spec(body.spec).model_dump(mode="json")
    except SpecError as exc:
        raise HTTPException(422, spec_error_list(exc)) from None
    try:
        spec = confine_dataset(spec, settings.datasets)
    except UnsafeUserFile as exc:
        raise HTTPException(422, [{"field": f"spec.{exc.field}", "message": str(exc)}]) from None
    job = jobops.create_job(
        session, settings, spec, owner=owner, priority=body.priority, tags=body.tags,
        device=body.resources.device,
    )
    session.commit()
    try:
        enqueue(job)
    except Exception as exc:  # noqa: BLE001 - the broker is down: say so, keep the record
        log.exception("enqueue failed for job %s", job.id)
        job.status, job.error = "failed", f"could not enqueue: {exc}"
        session.commit()
        raise HTTPException(503, f"the job queue is unavailable: {exc}") from exc
    return job_detail(job)


@router.get("", response_model=JobList)
def list_jobs(
    session: SessionDep,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    tag: str | None = None,
    owner: str | None = None,
    sweep: Annotated[uuid.UUID | None, Query(description="Jobs of this sweep.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobList:
    q = select(Job)
    if status_:
        q = q.where(Job.status == status_)
    if owner:
        q = q.where(Job.owner == owner)
    if sweep:
        q = q.where(Job.sweep_id == sweep)
    if tag:
        q = q.where(Job.id.in_(select(JobTag.job_id).where(JobTag.tag == tag)))
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(
        q.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
    ).all()
    return JobList(items=[job_summary(j) for j in rows], total=total, limit=limit, offset=offset)


@router.get("/{job_id}", response_model=JobDetail)
def get_job(job: JobDep) -> JobDetail:
    return job_detail(job)


@router.post("/{job_id}/cancel", response_model=JobDetail,
             responses={409: {"description": "The job has already finished."}})
def cancel_job(job: JobDep, session: SessionDep) -> JobDetail:
    if job.status in TERMINAL:
        raise HTTPException(409, f"job {job.id} is already {job.status}")
    updated = jobops.request_cancel(session, job.id)
    session.commit()
    return job_detail(updated)
