"""The ``jobs`` and ``job_tags`` tables: every read, and every state change of a job.

Every state change is one conditional UPDATE (compare-and-set on ``status``/``lease``), so an
API replica, a reaper and a worker racing on the same job cannot both win. Writes of an
attempt (heartbeat, progress, outcome) are fenced by its lease.

    queued --claim--> running --finish--> succeeded | failed | cancelled
       ^                 |
       +--- reap --------+   (heartbeat stale; attempts < max_attempts, else failed)

The functions take a Session (API, reaper) or a Connection (the worker's sink, which writes
progress in the same transaction as the metric batch): both execute the same statements.
Every change that starts or ends an attempt records it (:mod:`service.db.attempts`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.orm import Session

from service.core.config import Settings
from service.db import attempts
from service.db.attempts import BY_STATUS, Ended, LeaseLost
from service.db.models import TERMINAL, Job, JobTag, utcnow

log = logging.getLogger(__name__)


def spec_hash(spec: dict[str, Any]) -> str:
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# ------------------------------------------------------------------ reads


def get_job(session: Session, job_id: uuid.UUID) -> Job | None:
    return session.get(Job, job_id)


def job_ids_matching(session: Session, text: str) -> list[uuid.UUID]:
    """Job ids that ``text`` (an id or a unique prefix of 6+ hex digits) names; several when
    ambiguous. Raises :class:`service.db.ids.BadId`."""
    from service.db.ids import matching

    return matching(session, Job.id, text)

# the spec fields the job list filters on: query name -> path in the resolved spec
SPEC_FILTERS: dict[str, tuple[str, ...]] = {
    "dataset": ("dataset", "name"),
    "arch": ("model", "arch"),
    "likelihood": ("likelihood", "kind"),
    "kl": ("kl", "schedule", "kind"),
}
# sortable columns of the job list
SORTS = ("created_at", "updated_at", "status", "owner", "name", "priority", "step", "attempts")


def list_jobs(
    session: Session, *, status: str | None = None, owner: str | None = None,
    sweep_id: uuid.UUID | None = None, tag: str | None = None, limit: int = 50, offset: int = 0,
    spec: dict[str, str] | None = None, sort: str = "created_at", descending: bool = True,
    statuses: list[str] | None = None, ids: list[uuid.UUID] | None = None,
) -> tuple[list[Job], int]:
    """One page of jobs (default newest first) and how many match in all. ``spec`` filters
    on :data:`SPEC_FILTERS` (``{"dataset": "digits"}``); ``sort`` is one of :data:`SORTS`."""
    q = select(Job)
    if status:
        q = q.where(Job.status == status)
    if statuses:
        q = q.where(Job.status.in_(statuses))
    if ids:
        q = q.where(Job.id.in_(ids))
    if owner:
        q = q.where(Job.owner == owner)
    if sweep_id:
        q = q.where(Job.sweep_id == sweep_id)
    if tag:
        q = q.where(Job.id.in_(select(JobTag.job_id).where(JobTag.tag == tag)))
    for name, value in (spec or {}).items():
        q = q.where(Job.spec[SPEC_FILTERS[name]].as_string() == value)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    column = getattr(Job, sort if sort in SORTS else "created_at")
    key = column.desc() if descending else column.asc()
    rows = session.scalars(
        q.order_by(key, Job.created_at.desc(), Job.id).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def jobs_reading(session: Session, path: str) -> dict[str, int]:
    """How many jobs, per status, read the dataset file at ``path`` (the resolved absolute
    path a spec's npz dataset holds after submission)."""
    rows = session.execute(
        select(Job.status, func.count()).where(
            Job.spec["dataset"]["path"].as_string() == path).group_by(Job.status))
    return {status: int(n) for status, n in rows}


def counts_by_status_and_queue(session: Session) -> list[tuple[str, str, int]]:
    """(status, queue, jobs) for every pair that has jobs (Prometheus)."""
    rows = session.execute(select(Job.status, Job.queue, func.count())
                           .group_by(Job.status, Job.queue))
    return [(s, q, int(n)) for s, q, n in rows]


def running_by_worker(session: Session) -> list[tuple[str, int]]:
    rows = session.execute(select(Job.worker, func.count()).where(Job.status == "running")
                           .group_by(Job.worker))
    return [(w or "unknown", int(n)) for w, n in rows]


def lifetimes(session: Session) -> list[tuple[datetime, datetime | None, datetime | None]]:
    """(created, started, finished) of every job that has started (Prometheus' waiting and
    run time histograms)."""
    return [tuple(r) for r in session.execute(
        select(Job.created_at, Job.started_at, Job.finished_at)
        .where(Job.started_at.is_not(None)))]


def sweep_jobs(session: Session, sweep_id: uuid.UUID) -> list[Job]:
    """The jobs of a sweep, in point order."""
    return list(session.scalars(
        select(Job).where(Job.sweep_id == sweep_id).order_by(Job.sweep_index, Job.created_at)
    ))


# ------------------------------------------------------------------ the API's writes


def create_job(
    session: Session, settings: Settings, spec: dict[str, Any], *, owner: str,
    priority: int = 0, tags: list[str] | None = None, device: str = "auto",
    sweep: tuple[uuid.UUID, int, dict[str, Any]] | None = None,
    input_sha256: dict[str, str] | None = None,
) -> Job:
    """A new ``queued`` job; ``sweep`` = (sweep id, point index, the point's overrides)."""
    job = Job(
        id=uuid.uuid4(), status="queued", name=str(spec.get("name", "vae")), spec=spec,
        spec_hash=spec_hash(spec), owner=owner, priority=priority, device=device,
        queue=settings.queue_for(device), attempts=0, step=0, cancel_requested=False,
        input_sha256=input_sha256,
    )
    if sweep is not None:
        job.sweep_id, job.sweep_index, job.sweep_params = sweep
    job.tag_rows = [JobTag(tag=t) for t in sorted(set(tags or []))]
    session.add(job)
    session.flush()
    return job


def request_cancel(session: Session, job_id: uuid.UUID) -> Job | None:
    """Queued → cancelled at once; running → flag for the worker's ``should_stop``."""
    now = utcnow()
    _update(session, update(Job).where(Job.id == job_id, Job.status == "queued").values(
        status="cancelled", cancel_requested=True, finished_at=now, updated_at=now))
    _update(session, update(Job).where(Job.id == job_id, Job.status == "running").values(
        cancel_requested=True, updated_at=now))
    session.flush()
    session.expire_all()
    return session.get(Job, job_id)


def delete_finished(session: Session, job_id: uuid.UUID) -> bool:
    """Delete a job row (and its tags) if it has finished; False if it is queued or running
    (or gone). One conditional DELETE: a job claimed meanwhile is not deleted."""
    res = session.execute(delete(Job).where(Job.id == job_id, Job.status.in_(TERMINAL)),
                          execution_options={"synchronize_session": False})
    if res.rowcount != 1:
        return False
    session.execute(delete(JobTag).where(JobTag.job_id == job_id))
    return True


# ------------------------------------------------------------------ an attempt


def claim(
    session: Session, job_id: uuid.UUID, lease: str, worker: str, stale_after_s: float,
    max_attempts: int | None = None, delivery_tag: str | None = None,
) -> bool:
    """Take a job for one attempt: queued, or running with a stale heartbeat (a redelivery
    after its worker died) and fewer than ``max_attempts`` attempts — the reaper's bound: a
    stale job that has used them all ends ``failed`` here as it would there. False means
    someone else has it or it is finished. Opens the attempt's row (a stale one: worker_lost)."""
    now = utcnow()
    stale = now - timedelta(seconds=stale_after_s)
    under_limit = True if max_attempts is None else Job.attempts < max_attempts
    claimable = (Job.status == "queued") | (_is_stale(stale) & under_limit)
    previous = session.scalar(select(Job.lease).where(Job.id == job_id))
    res = _update(session, update(Job).where(
        Job.id == job_id, claimable, Job.cancel_requested.is_(False),
        Job.lease.is_(None) if previous is None else Job.lease == previous,
    ).values(
        status="running", lease=lease, worker=worker, attempts=Job.attempts + 1,
        heartbeat_at=now, attempt_started_at=now, updated_at=now, error=None,
        released_to=None, preempt_requested=False,
    ))
    if res.rowcount != 1:
        if max_attempts is not None:
            _fail_exhausted(session, job_id, stale, max_attempts, now)
        # a queued job whose cancel flag is set is cancelled, not run
        _update(session, update(Job).where(
            Job.id == job_id, Job.status == "queued", Job.cancel_requested.is_(True),
        ).values(status="cancelled", finished_at=now, updated_at=now))
        return False
    number = attempts.open_attempt(session, job_id, lease, worker, delivery_tag)
    if previous is not None:  # a redelivered message took over from a silent attempt
        attempts.close_attempt(session, job_id, previous, "worker_lost",
                               f"no heartbeat; taken over by attempt {number}", now)
    _update(session, update(Job).where(Job.id == job_id, Job.started_at.is_(None))
            .values(started_at=now))
    return True


def finish(session: Session, job_id: uuid.UUID, lease: str, status: str,
           ended: Ended | None = None, **values: Any) -> bool:
    """Record an outcome if this attempt still holds the lease; close the attempt as ``ended``
    (default: the status's; preemption: ``finish(s, id, lease, "queued", ended="preempted")``)."""
    now = utcnow()
    if status in TERMINAL:
        values.setdefault("finished_at", now)
    res = _update(session, update(Job).where(
        Job.id == job_id, Job.lease == lease, Job.status == "running",
    ).values(status=status, updated_at=now, lease=None, **values))
    if res.rowcount != 1:
        return False
    attempts.close_attempt(session, job_id, lease, ended or BY_STATUS[status],
                           values.get("error"), now)
    return True


# the ends of an attempt that were the infrastructure's fault (or the scheduler's choice):
# they do not use up one of the job's max_attempts
NOT_COUNTED: tuple[Ended, ...] = ("database_lost", "preempted", "broker_lost")


def requeue_attempt(session: Session, job_id: uuid.UUID, lease: str, reason: Ended,
                    message: str | None, **values: Any) -> bool:
    """End a running attempt as ``reason`` and queue its job again with its progress, if this
    attempt still holds the lease; a reason in :data:`NOT_COUNTED` gives the attempt back."""
    values["error"] = message
    if reason in NOT_COUNTED:
        values["attempts"] = Job.attempts - 1
    return finish(session, job_id, lease, "queued", ended=reason, **values)


def beat(session: Session, job_id: uuid.UUID, lease: str, step: int) -> bool:
    """The heartbeat of an attempt; False: the lease is gone (the job was reaped)."""
    res = _update(session, update(Job).where(Job.id == job_id, Job.lease == lease)
                  .values(heartbeat_at=utcnow(), step=step))
    return res.rowcount == 1


def attempt_flags(session: Session, job_id: uuid.UUID, lease: str) -> tuple[bool, bool]:
    """(lease lost, cancel requested) for a running attempt."""
    row = session.execute(
        select(Job.cancel_requested, Job.lease).where(Job.id == job_id)
    ).one_or_none()
    if row is None or row.lease != lease:
        return True, False
    return False, bool(row.cancel_requested)


def record_progress(conn: Connection | Session, job_id: uuid.UUID, lease: str | None,
                    **values: Any) -> None:
    """An attempt's progress (step, total_steps, resume_step, latest_metrics, summary),
    fenced by its lease when it has one: raises :class:`LeaseLost` (the caller's transaction
    then rolls back) once the lease is gone."""
    stmt = update(Job).where(Job.id == job_id)
    if lease is not None:
        stmt = stmt.where(Job.lease == lease)
    if _update(conn, stmt.values(**values)).rowcount != 1 and lease is not None:
        raise LeaseLost(f"job {job_id}: lease {lease[:8]} is no longer held")
    if lease is not None and "resume_step" in values:
        attempts.started_at_step(conn, job_id, lease, values["resume_step"])


def record_progress_now(engine: Engine, job_id: uuid.UUID, lease: str | None,
                        **values: Any) -> None:
    """:func:`record_progress` in a transaction of its own."""
    with engine.begin() as conn:
        record_progress(conn, job_id, lease, **values)


# ------------------------------------------------------------------ lost workers


def lost_outcome(cancel_requested: bool, attempts: int, max_attempts: int,
                 silent_s: float) -> tuple[str, str]:
    """(status, error) of a job whose worker went silent: cancelled if a cancel was asked,
    failed once its attempts are used up, else back to queued."""
    if cancel_requested:
        return "cancelled", (f"worker lost (no heartbeat for {silent_s:.0f} s) after a cancel "
                             "request")
    if attempts >= max_attempts:
        return "failed", (f"worker lost: no heartbeat for {silent_s:.0f} s on attempt "
                          f"{attempts} of {max_attempts}; giving up")
    return "queued", (f"worker lost on attempt {attempts} (no heartbeat for {silent_s:.0f} s); "
                      "re-enqueued")


def stale_running(session: Session, stale_after_s: float) -> tuple[list[Job], datetime]:
    """Running jobs whose heartbeat is older than ``stale_after_s``, and that cut-off."""
    stale = utcnow() - timedelta(seconds=stale_after_s)
    jobs = session.scalars(
        select(Job).where(Job.status == "running", Job.heartbeat_at < stale)
    ).all()
    return list(jobs), stale


def reap_job(session: Session, job: Job, stale: datetime, max_attempts: int,
             ended: Ended = "worker_lost") -> str | None:
    """Take a stale job from its silent attempt (closed as ``ended``): "requeued", "failed"
    or "cancelled"; None if it beat again or someone else took it meanwhile."""
    now = utcnow()
    status, error = lost_outcome(job.cancel_requested, job.attempts, max_attempts,
                                 _seconds(now, job.heartbeat_at))
    values: dict[str, Any] = dict(status=status, error=error, lease=None, updated_at=now)
    if status in TERMINAL:
        values["finished_at"] = now
    res = _update(session, update(Job).where(
        Job.id == job.id, Job.status == "running", Job.lease == job.lease,
        Job.heartbeat_at < stale,
    ).values(**values))
    if res.rowcount != 1:
        return None
    attempts.close_attempt(session, job.id, job.lease, ended, error, now)
    return "requeued" if status == "queued" else status


def requeue_running(session: Session) -> list[Job]:
    """Every running job back to queued (the embedded server's start-up: it owns the only
    worker); returns every queued job, oldest first."""
    for job_id, lease in session.execute(select(Job.id, Job.lease).where(
            Job.status == "running")).all():
        attempts.close_attempt(session, job_id, lease, "worker_lost", "server restarted")
    _update(session, update(Job).where(Job.status == "running").values(
        status="queued", lease=None, updated_at=utcnow()))
    return list(session.scalars(
        select(Job).where(Job.status == "queued").order_by(Job.created_at)
    ))


# ------------------------------------------------------------------ helpers


def _fail_exhausted(session: Session, job_id: uuid.UUID, stale: datetime, max_attempts: int,
                    now: datetime) -> None:
    """A stale running job whose attempts are used up: failed (cancelled if a cancel was
    requested), with the reason, as :func:`reap_job` would record it."""
    job = session.execute(
        select(Job.attempts, Job.heartbeat_at, Job.cancel_requested).where(Job.id == job_id)
    ).one_or_none()
    if job is None:
        return
    status, error = lost_outcome(job.cancel_requested, job.attempts, max_attempts,
                                 _seconds(now, job.heartbeat_at))
    if status == "queued":  # attempts left: not this function's case
        return
    res = _update(session, update(Job).where(
        Job.id == job_id, Job.status == "running", Job.attempts >= max_attempts,
        _is_stale(stale),
    ).values(status=status, error=error, lease=None, finished_at=now, updated_at=now))
    if res.rowcount == 1:
        attempts.close_attempt(session, job_id, None, "worker_lost", error, now)
        log.warning("claim: job %s %s (attempts used up)", job_id, status)


def _is_stale(stale: datetime) -> Any:
    return (Job.status == "running") & ((Job.heartbeat_at.is_(None)) | (Job.heartbeat_at < stale))


def _update(conn: Connection | Session, stmt: Any) -> Any:
    # plain SQL semantics: don't evaluate the WHERE against objects in the session
    if isinstance(conn, Session):
        return conn.execute(stmt, execution_options={"synchronize_session": False})
    return conn.execute(stmt)


def _seconds(now: datetime, then: datetime | None) -> float:
    if then is None:
        return float("inf")
    if then.tzinfo is None:
        then = then.replace(tzinfo=now.tzinfo)
    return (now - then).total_seconds()
