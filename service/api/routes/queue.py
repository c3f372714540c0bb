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
def get_queue(session: SessionDep, settings: SettingsDep, user: CurrentUser) -> QueueOut:
    """Under ``VAELAB_READ_SCOPE=owner`` a member sees only their own entries, each at its
    place in the whole queue, and how many entries of other users were left out
    (``hidden``); an admin, or anyone under ``lab``, sees every entry."""
    view = queue_view(session, settings)
    entries, hidden = view.visible_to(access.list_owner(user, None, settings.read_scope))
    items = [QueueEntry(position=pos, state=state, reason=reason, job=job_summary(job))
             for pos, state, reason, job in entries]
    workers = [WorkerOut(name=w.name, device_kind=w.device_kind, gpu_index=w.gpu_index,
                         gpu_name=w.gpu_name, memory_bytes=w.memory_bytes, slots=w.slots,
                         busy=busy, live=live, heartbeat_at=aware(w.heartbeat_at),
                         started_at=aware(w.started_at))
               for w, busy, live in view.workers]
    return QueueOut(items=items, workers=workers, hidden=hidden,
                    running=sum(1 for state, _, _ in view.entries if state == "running"),
                    waiting=sum(1 for state, _, _ in view.entries if state != "running"))


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
