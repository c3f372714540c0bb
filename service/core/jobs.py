"""Job life cycle shared by the API, the worker and the reaper.

Every state change is one conditional UPDATE (compare-and-set on ``status``/``lease``), so
an API replica, a reaper and a worker racing on the same job cannot both win.

    queued --claim--> running --outcome--> succeeded | failed | cancelled
       ^                 |
       +--- reaper ------+   (heartbeat stale; attempts < max_attempts, else failed)

The reaper also re-sends a job left ``queued`` too long (its message may have been lost).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.core.config import Settings
from service.db.models import TERMINAL, Job, JobTag, utcnow

log = logging.getLogger(__name__)

Enqueue = Callable[[Job], None]


def spec_hash(spec: dict[str, Any]) -> str:
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def create_job(
    session: Session,
    settings: Settings,
    spec: dict[str, Any],
    *,
    owner: str,
    priority: int = 0,
    tags: list[str] | None = None,
    device: str = "auto",
) -> Job:
    job = Job(
        id=uuid.uuid4(),
        status="queued",
        name=str(spec.get("name", "vae")),
        spec=spec,
        spec_hash=spec_hash(spec),
        owner=owner,
        priority=priority,
        device=device,
        queue=settings.queue_for(device),
        attempts=0,
        step=0,
        cancel_requested=False,
    )
    job.tag_rows = [JobTag(tag=t) for t in sorted(set(tags or []))]
    session.add(job)
    session.flush()
    return job


def request_cancel(session: Session, job_id: uuid.UUID) -> Job | None:
    """Queued → cancelled at once; running → flag for the worker's ``should_stop``."""
    now = utcnow()
    _update(session,
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(status="cancelled", cancel_requested=True, finished_at=now, updated_at=now)
    )
    _update(session,
        update(Job)
        .where(Job.id == job_id, Job.status == "running")
        .values(cancel_requested=True, updated_at=now)
    )
    session.flush()
    session.expire_all()
    return session.get(Job, job_id)


def claim(
    session: Session, job_id: uuid.UUID, lease: str, worker: str, stale_after_s: float,
    max_attempts: int | None = None,
) -> bool:
    """Take a job for one attempt: queued, or running with a stale heartbeat (a redelivery
    after its worker died) and fewer than ``max_attempts`` attempts — the reaper's bound: a
    stale job that has used them all ends ``failed`` here as it would there. False means
    someone else has it or it is finished."""
    now = utcnow()
    stale = now - timedelta(seconds=stale_after_s)
    is_stale = (Job.status == "running") & (
        (Job.heartbeat_at.is_(None)) | (Job.heartbeat_at < stale)
    )
    under_limit = True if max_attempts is None else Job.attempts < max_attempts
    claimable = (Job.status == "queued") | (is_stale & under_limit)
    res = _update(session,
        update(Job)
        .where(Job.id == job_id, claimable, Job.cancel_requested.is_(False))
        .values(
            status="running", lease=lease, worker=worker, attempts=Job.attempts + 1,
            heartbeat_at=now, attempt_started_at=now, updated_at=now, error=None,
        )
    )
    if res.rowcount != 1:
        if max_attempts is not None:
            _fail_exhausted(session, job_id, stale, max_attempts, now)
        # a queued job whose cancel flag is set is cancelled, not run
        _update(session,
            update(Job)
            .where(Job.id == job_id, Job.status == "queued", Job.cancel_requested.is_(True))
            .values(status="cancelled", finished_at=now, updated_at=now)
        )
        return False
    _update(session,
        update(Job).where(Job.id == job_id, Job.started_at.is_(None)).values(started_at=now)
    )
    return True


def _fail_exhausted(session: Session, job_id: uuid.UUID, stale: datetime, max_attempts: int,
                    now: datetime) -> None:
    """A stale running job whose attempts are used up: failed (cancelled if a cancel was
    requested), with the reason, as :func:`reap` would record it."""
    job = session.execute(
        select(Job.attempts, Job.heartbeat_at, Job.cancel_requested).where(Job.id == job_id)
    ).one_or_none()
    if job is None:
        return
    base = update(Job).where(
        Job.id == job_id, Job.status == "running", Job.attempts >= max_attempts,
        (Job.heartbeat_at.is_(None)) | (Job.heartbeat_at < stale),
    )
    silent = _seconds(now, job.heartbeat_at)
    if job.cancel_requested:
        values = dict(status="cancelled", error=f"worker lost (no heartbeat for {silent:.0f} s) "
                      "after a cancel request")
    else:
        values = dict(status="failed", error=(
            f"worker lost: no heartbeat for {silent:.0f} s on attempt {job.attempts} of "
            f"{max_attempts}; giving up"))
    res = _update(session, base.values(lease=None, finished_at=now, updated_at=now, **values))
    if res.rowcount == 1:
        log.warning("claim: job %s %s (attempts used up)", job_id, values["status"])


def finish(
    session: Session, job_id: uuid.UUID, lease: str, status: str, **values: Any
) -> bool:
    """Record an outcome if this attempt still holds the lease."""
    now = utcnow()
    if status in TERMINAL:
        values.setdefault("finished_at", now)
    res = _update(session,
        update(Job)
        .where(Job.id == job_id, Job.lease == lease, Job.status == "running")
        .values(status=status, updated_at=now, lease=None, **values)
    )
    return res.rowcount == 1


def reap(session: Session, settings: Settings, enqueue: Enqueue) -> list[tuple[str, str]]:
    """Re-enqueue running jobs whose heartbeat is stale; fail them after ``max_attempts``.

    Returns ``[(job_id, "requeued" | "failed")]``. Safe to run from several processes.
    """
    now = utcnow()
    stale = now - timedelta(seconds=settings.reaper_stale_after_s)
    candidates = session.scalars(
        select(Job).where(Job.status == "running", Job.heartbeat_at < stale)
    ).all()
    actions: list[tuple[str, str]] = []
    for job in candidates:
        base = update(Job).where(
            Job.id == job.id, Job.status == "running", Job.lease == job.lease,
            Job.heartbeat_at < stale,
        )
        silent = _seconds(now, job.heartbeat_at)
        if job.cancel_requested:
            res = _update(session, base.values(
                status="cancelled", lease=None, finished_at=now, updated_at=now,
                error=f"worker lost (no heartbeat for {silent:.0f} s) after a cancel request",
            ))
            action = "cancelled"
        elif job.attempts >= settings.max_attempts:
            res = _update(session, base.values(
                status="failed", lease=None, finished_at=now, updated_at=now,
                error=(f"worker lost: no heartbeat for {silent:.0f} s on attempt "
                       f"{job.attempts} of {settings.max_attempts}; giving up"),
            ))
            action = "failed"
        else:
            res = _update(session, base.values(
                status="queued", lease=None, updated_at=now,
                error=f"worker lost on attempt {job.attempts} (no heartbeat for "
                      f"{silent:.0f} s); re-enqueued",
            ))
            action = "requeued"
        if res.rowcount == 1:
            session.commit()
            if action == "requeued":
                session.refresh(job)
                enqueue(job)
            log.warning("reaper: job %s %s", job.id, action)
            actions.append((str(job.id), action))
    session.commit()
    actions.extend(_resend_queued(session, settings, enqueue, now))
    return actions


def _resend_queued(
    session: Session, settings: Settings, enqueue: Enqueue, now: datetime
) -> list[tuple[str, str]]:
    """Send again the jobs queued (or last sent) over ``reaper_requeue_queued_after_s`` ago:
    a job is committed as ``queued`` before its message is sent, so a crash or a broker
    failure in between leaves it with no message. A job still waiting behind others gets a
    duplicate, which :func:`claim` drops (at most one per job per interval: the CAS on
    ``updated_at`` picks one reaper, and bumps the clock)."""
    old = now - timedelta(seconds=settings.reaper_requeue_queued_after_s)
    candidates = session.scalars(
        select(Job).where(Job.status == "queued", Job.updated_at < old)
        .order_by(Job.created_at)
    ).all()
    actions: list[tuple[str, str]] = []
    for job in candidates:
        res = _update(session,
            update(Job).where(Job.id == job.id, Job.status == "queued",
                              Job.updated_at == job.updated_at)
            .values(updated_at=now)
        )
        if res.rowcount != 1:
            continue
        session.commit()
        enqueue(job)  # a broker failure here: the next pass, an interval later, tries again
        log.warning("reaper: job %s queued since %s; message re-sent", job.id, job.updated_at)
        actions.append((str(job.id), "resent"))
    return actions


def requeue_unfinished(session: Session, enqueue: Enqueue) -> list[str]:
    """Embedded server start-up: it owns the only worker, so every running job is an orphan
    of the previous run and every queued job may have lost its message. Re-send them all;
    a duplicate message is dropped by :func:`claim`."""
    now = utcnow()
    _update(session,
        update(Job).where(Job.status == "running").values(
            status="queued", lease=None, updated_at=now
        )
    )
    session.commit()
    jobs = session.scalars(select(Job).where(Job.status == "queued").order_by(Job.created_at))
    ids = []
    for job in jobs.all():
        enqueue(job)
        ids.append(str(job.id))
    return ids


def _update(session: Session, stmt: Any) -> Any:
    # plain SQL semantics: don't evaluate the WHERE against objects in the session
    return session.execute(stmt, execution_options={"synchronize_session": False})


def _seconds(now: datetime, then: datetime | None) -> float:
    if then is None:
        return float("inf")
    if then.tzinfo is None:
        then = then.replace(tzinfo=now.tzinfo)
    return (now - then).total_seconds()
