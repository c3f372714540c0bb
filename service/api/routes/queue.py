"""The queue: running and waiting jobs in release order with the reason each waits; an
admin's preemption and preemptible flag."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from service.api.deps import CurrentUser, JobDep, SessionDep, SettingsDep, forbid_unless
from service.api.responses import BY_ID, conflict
from service.api.schemas import JobDetail, aware, job_detail, job_summary
from service.api.schemas.queue import PreemptibleIn, QueueEntry, QueueOut, WorkerOut
from service.core import access
from service.core.dispatcher import queue_view
from service.db import scheduling as sched_db

router = APIRouter(prefix="/api/v1", tags=["queue"])


@router.get("/queue", response_model=QueueOut)
def get_queue(session: SessionDep, settings: SettingsDep) -> QueueOut:
    view = queue_view(session, settings)
    items = [QueueEntry(position=i + 1, state=state, reason=reason, job=job_summary(job))
             for i, (state, reason, job) in enumerate(view.entries)]
    workers = [WorkerOut(name=w.name, device_kind=w.device_kind, gpu_index=w.gpu_index,
                         gpu_name=w.gpu_name, memory_bytes=w.memory_bytes, slots=w.slots,
                         busy=busy, live=live, heartbeat_at=aware(w.heartbeat_at),
                         started_at=aware(w.started_at))
               for w, busy, live in view.workers]
    return QueueOut(items=items, workers=workers,
                    running=sum(1 for e in items if e.state == "running"),
                    waiting=sum(1 for e in items if e.state != "running"))


@router.post("/jobs/{job_id}/preempt", response_model=JobDetail,
             responses=conflict("The job is not running."))
def preempt_job(job: JobDep, session: SessionDep, user: CurrentUser) -> JobDetail:
    """Ask a running job to checkpoint at its next step and wait again (it resumes exactly
    later). Admins only; an admin may preempt a job marked non-preemptible."""
    forbid_unless(lambda: access.require_admin(user, "preempt jobs"))
    if job.status != "running":
        raise HTTPException(409, f"job {job.id} is {job.status}, not running")
    if not sched_db.request_preempt(session, job.id, force=True) and \
            not job.preempt_requested:
        session.rollback()
        raise HTTPException(409, f"job {job.id} is no longer running")
    session.commit()
    session.refresh(job)
    return job_detail(job)


@router.post("/jobs/{job_id}/preemptible", response_model=JobDetail, responses=BY_ID)
def set_preemptible(job: JobDep, body: PreemptibleIn, session: SessionDep,
                    user: CurrentUser) -> JobDetail:
    """Mark a job (non-)preemptible: the dispatcher never preempts a job marked false.
    Admins only."""
    forbid_unless(lambda: access.require_admin(user, "mark jobs (non-)preemptible"))
    sched_db.set_preemptible(session, job.id, body.preemptible)
    session.commit()
    session.refresh(job)
    return job_detail(job)
