"""An attempt at a job: its lease (the fence every write of the attempt goes through) and its
row in ``job_attempts`` (the job's history).

Fencing: a claim gives the attempt a fresh ``jobs.lease``; the reaper or a takeover replaces
it. Every write an attempt makes (metric points, evaluations, artifact rows, job fields)
runs :func:`hold` first, in the write's own transaction: ``UPDATE jobs … WHERE id AND
lease`` matches no row once the lease is gone, so the transaction rolls back and
:class:`LeaseLost` is raised. The UPDATE also locks the job's row until the write commits
(PostgreSQL's row lock, SQLite's write lock), so the reaper cannot take the job between the
check and the write.

History: :func:`open_attempt` is called by the claim, :func:`close_attempt` by every state
change that ends an attempt (finish, reap, a takeover, the embedded server's restart), each
in the same transaction as the job's change. The reason is one of :data:`ENDED`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import Connection, func, select, update
from sqlalchemy.orm import Session

from service.db.models import Job, JobAttempt, utcnow

Ended = Literal["succeeded", "failed", "cancelled", "worker_lost", "database_lost",
                "preempted", "shut_down", "broker_lost"]
ENDED: tuple[str, ...] = get_args(Ended)

# the reason an attempt ended when the job's new status is all we are told
BY_STATUS: dict[str, Ended] = {"succeeded": "succeeded", "failed": "failed",
                               "cancelled": "cancelled", "queued": "shut_down"}


class LeaseLost(RuntimeError):
    """The attempt no longer holds the job's lease (reaped, taken over, finished): its write
    was rolled back, and it must stop."""


# ------------------------------------------------------------------ the fence


def hold(conn: Connection | Session, job_id: uuid.UUID, lease: str | None) -> None:
    """Raise :class:`LeaseLost` unless ``lease`` is the job's lease; else lock the job's row
    for the rest of the transaction. ``None`` (a sink outside any attempt) holds always."""
    if lease is None:
        return
    stmt = update(Job).where(Job.id == job_id, Job.lease == lease).values(lease=lease)
    if _execute(conn, stmt).rowcount != 1:
        raise LeaseLost(f"job {job_id}: lease {lease[:8]} is no longer held")


# ------------------------------------------------------------------ the history


def open_attempt(session: Session, job_id: uuid.UUID, lease: str, worker: str,
                 delivery_tag: str | None = None) -> int:
    """The row of the attempt a claim just started, numbered after the job's earlier rows
    (not ``jobs.attempts``, which an attempt ended by the infrastructure or a preemption
    gives back); its start step is the job's step until :func:`started_at_step` says where
    it resumed."""
    step = session.scalar(select(Job.step).where(Job.id == job_id))
    number = 1 + (session.scalar(select(func.max(JobAttempt.attempt))
                                 .where(JobAttempt.job_id == job_id)) or 0)
    session.add(JobAttempt(job_id=job_id, attempt=number, lease=lease, worker=worker,
                           delivery_tag=delivery_tag, started_at=utcnow(), start_step=step))
    session.flush()
    return int(number)


def started_at_step(conn: Connection | Session, job_id: uuid.UUID, lease: str,
                    step: int) -> None:
    """The step the attempt resumed from (its checkpoint's), once the engine knows it."""
    _execute(conn, update(JobAttempt).where(
        JobAttempt.job_id == job_id, JobAttempt.lease == lease).values(start_step=step))


def close_attempt(conn: Connection | Session, job_id: uuid.UUID, lease: str | None,
                  ended: Ended, message: str | None = None,
                  now: datetime | None = None) -> bool:
    """End the open attempt holding ``lease`` (any open attempt of the job if None) with its
    reason, at the job's current step. False if none was open."""
    if ended not in ENDED:
        raise ValueError(f"unknown attempt end {ended!r}; one of {', '.join(ENDED)}")
    step = select(Job.step).where(Job.id == job_id).scalar_subquery()
    stmt = update(JobAttempt).where(JobAttempt.job_id == job_id, JobAttempt.ended.is_(None))
    if lease is not None:
        stmt = stmt.where(JobAttempt.lease == lease)
    res = _execute(conn, stmt.values(ended=ended, message=message, end_step=step,
                                     ended_at=now or utcnow()))
    return res.rowcount > 0


def history(session: Session, job_id: uuid.UUID) -> list[JobAttempt]:
    """A job's attempts, oldest first."""
    return list(session.scalars(
        select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.attempt)))


def histories(session: Session, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[JobAttempt]]:
    """:func:`history` of several jobs at once."""
    out: dict[uuid.UUID, list[JobAttempt]] = {jid: [] for jid in job_ids}
    if job_ids:
        for row in session.scalars(select(JobAttempt).where(JobAttempt.job_id.in_(job_ids))
                                   .order_by(JobAttempt.job_id, JobAttempt.attempt)):
            out[row.job_id].append(row)
    return out


def stale_delivery_tags(session: Session, job_id: uuid.UUID,
                        current_lease: str | None = None) -> list[str]:
    """The broker delivery tags of the job's attempts other than ``current_lease``'s: their
    messages are stale once the job has ended or another attempt holds it."""
    q = select(JobAttempt.delivery_tag).where(JobAttempt.job_id == job_id,
                                              JobAttempt.delivery_tag.is_not(None))
    if current_lease is not None:
        q = q.where(JobAttempt.lease != current_lease)
    return [t for t in session.scalars(q) if t]


def _execute(conn: Connection | Session, stmt: Any) -> Any:
    # plain SQL semantics: don't evaluate the WHERE against objects in the session
    if isinstance(conn, Session):
        return conn.execute(stmt, execution_options={"synchronize_session": False})
    return conn.execute(stmt)
