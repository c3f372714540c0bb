"""The dispatcher's reads and writes: user policies, decayed usage, the queue's state, and a
job's release, re-release and preemption (compare-and-set on ``jobs``, like
:mod:`service.db.jobs`).

A waiting job is ``queued`` with ``released_to`` NULL; a released one is ``queued`` with
``released_to`` naming the worker whose queue carries its message; ``claim`` (running)
clears it, so a job that goes back to ``queued`` is waiting again.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Double, String, case, cast, func, select, text, update
from sqlalchemy.orm import Session

from service.core.scheduler import (
    Policy,
    Running,
    Slot,
    Waiting,
    decayed,
    heads_needed,
)
from service.db.models import Job, User, UserUsage, utcnow
from service.db.session import get_engine

LOCK_KEY = zlib.crc32(b"vaelab.dispatcher")  # one PostgreSQL advisory lock for all replicas


def _ts(dt: datetime | None) -> float:
    if dt is None:
        return 0.0
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _cas(session: Session, stmt: Any) -> bool:
    return session.execute(stmt, execution_options={"synchronize_session": False}
                           ).rowcount == 1


# ------------------------------------------------------------------ policies and usage


def user_policies(session: Session, user: str | None = None) -> dict[str, Policy]:
    """Every user's quotas, weight and priority cap (or only ``user``'s): the one reader of
    quotas. A disabled user may run nothing."""
    stmt = select(User.name, User.max_running, User.weight, User.max_priority,
                  User.max_queued, User.disabled)
    if user is not None:
        stmt = stmt.where(User.name == user)
    return {n: Policy(max_running=0 if off else mr, weight=float(w or 1.0), max_priority=mp,
                      max_queued=mq)
            for n, mr, w, mp, mq, off in session.execute(stmt)}


def usage_now(session: Session, now: datetime, half_life_s: float) -> dict[str, float]:
    """Each user's usage in device-seconds, decayed to ``now``."""
    return {n: decayed(s, _ts(now) - _ts(at), half_life_s)
            for n, s, at in session.execute(select(UserUsage.name, UserUsage.device_seconds,
                                                   UserUsage.as_of))}


def accrue_usage(session: Session, now: datetime, half_life_s: float,
                 running: dict[str, int]) -> None:
    """Add the time since each user's last update times their running jobs (the caller
    holds the dispatch lock, so no interval is counted twice)."""
    rows = {r.name: r for r in session.scalars(select(UserUsage))}
    for user, n in running.items():
        row = rows.get(user)
        if row is None:
            session.add(UserUsage(name=user, device_seconds=0.0, as_of=now))
            continue
        row.device_seconds = decayed(row.device_seconds, _ts(now) - _ts(row.as_of),
                                     half_life_s, n)
        row.as_of = now
    session.flush()


# ------------------------------------------------------------------ the queue's state


def kind_of(queue: str, gpu_queue: str) -> str:
    return "gpu" if queue == gpu_queue else "cpu"


def queue_state(session: Session, gpu_queue: str, live: list[tuple[str, str, int]], *,
                heads_only: bool = False
                ) -> tuple[list[Waiting], list[Running], list[Slot]]:
    """The scheduler's inputs: waiting jobs, running and released jobs, live slots.

    ``heads_only`` (the dispatch pass) reads only each (user, kind) queue's first
    :func:`~service.core.scheduler.heads_needed` waiting jobs in the queue's own order,
    which make the same releases and preemptions as every waiting job; the queue listing
    reads them all, for every job's reason."""
    running = [Running(str(i), o, p, kind_of(q, gpu_queue), (w if s == "running" else r) or "",
                       bool(pe), bool(pr), s != "running") for i, o, p, q, s, w, r, pe, pr in
               session.execute(select(Job.id, Job.owner, Job.priority, Job.queue, Job.status,
                                      Job.worker, Job.released_to, Job.preemptible,
                                      Job.preempt_requested)
                               .where((Job.status == "running")
                                      | ((Job.status == "queued")
                                         & Job.released_to.is_not(None))))]
    slots = [Slot(name, kind, n) for name, kind, n in live]
    depth = heads_needed(running, slots) if heads_only else None
    return _waiting(session, gpu_queue, depth), running, slots


def _waiting(session: Session, gpu_queue: str, depth: dict[str, int] | None) -> list[Waiting]:
    # the long list is read through Core (no ORM row processing) and, on PostgreSQL, as
    # plain text and numbers that map straight onto Waiting
    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    where = (Job.status == "queued", Job.released_to.is_(None), Job.cancel_requested.is_(False))
    src: Any = Job.__table__
    if depth is not None:
        # row_number over each (owner, kind) queue in the scheduler's order: the priority
        # capped by the owner's max_priority, then submit time, then id (a uuid orders as
        # its text does, on both backends); the owner compared bytewise (cheaper, and any
        # collation partitions alike)
        capped = case((User.max_priority < Job.priority, User.max_priority),
                      else_=Job.priority)
        gpu = Job.queue == gpu_queue
        rank = func.row_number().over(
            partition_by=(Job.owner.collate("C") if pg else Job.owner, gpu),
            order_by=(capped.desc(), Job.created_at, Job.id))
        ranked = (select(Job.id, Job.owner, Job.priority, Job.queue, Job.created_at,
                         rank.label("rank"), case((gpu, depth["gpu"]), else_=depth["cpu"])
                         .label("depth"))
                  .outerjoin(User, User.name == Job.owner).where(*where).subquery())
        src, where = ranked, (ranked.c.rank <= ranked.c.depth,)
    c = src.c
    kind_col = case((c.queue == gpu_queue, "gpu"), else_="cpu")
    if pg:
        stmt = select(cast(c.id, String), c.owner, c.priority, kind_col,
                      cast(func.extract("epoch", c.created_at), Double)).where(*where)
        return list(map(Waiting._make, conn.execute(stmt)))
    stmt = select(c.id, c.owner, c.priority, kind_col, c.created_at).where(*where)
    return [Waiting(str(i), o, p, k, _ts(t)) for i, o, p, k, t in conn.execute(stmt)]


def running_per_user(session: Session) -> dict[str, int]:
    rows = session.execute(select(Job.owner, func.count()).where(Job.status == "running")
                           .group_by(Job.owner))
    return {o: int(n) for o, n in rows}


def waiting_count(session: Session, owner: str, queue: str) -> int:
    return session.scalar(select(func.count()).select_from(Job).where(
        Job.owner == owner, Job.queue == queue, Job.status == "queued")) or 0


def queue_jobs(session: Session) -> list[Job]:
    """Running and queued jobs (the queue's page; the caller orders them)."""
    return list(session.scalars(select(Job).where(Job.status.in_(("queued", "running")))))


# ------------------------------------------------------------------ the dispatcher's writes


@contextmanager
def dispatch_lock(url: str) -> Iterator[bool]:
    """Yields True in the one process (of several API replicas) that may dispatch now: a
    PostgreSQL session advisory lock on a connection of its own; SQLite (one embedded
    server) always True."""
    engine = get_engine(url)
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as conn:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})
                   .scalar())
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                conn.commit()


def release(session: Session, job_id: uuid.UUID, worker: str) -> bool:
    """Waiting → released to ``worker``; False if it was claimed, cancelled or released
    meanwhile."""
    now = utcnow()
    return _cas(session, update(Job).where(
        Job.id == job_id, Job.status == "queued", Job.released_to.is_(None),
        Job.cancel_requested.is_(False),
    ).values(released_to=worker, released_at=now))


def unrelease(session: Session, job_id: uuid.UUID, worker: str) -> bool:
    """Released → waiting again (its message could not be sent, or was never claimed)."""
    return _cas(session, update(Job).where(
        Job.id == job_id, Job.status == "queued", Job.released_to == worker,
    ).values(released_to=None, released_at=None))


def expire_releases(session: Session, timeout_s: float, live_workers: set[str]) -> int:
    """Released jobs not claimed within ``timeout_s``, or released to a worker that has
    gone silent, wait again (to be released again). Returns how many."""
    old = utcnow() - timedelta(seconds=timeout_s)
    stuck = session.execute(select(Job.id, Job.released_to, Job.released_at).where(
        Job.status == "queued", Job.released_to.is_not(None))).all()
    n = 0
    for job_id, worker, at in stuck:
        if worker not in live_workers or _ts(at) < _ts(old):
            n += unrelease(session, job_id, worker)
    return n


def forget_releases(session: Session) -> None:
    """Every released job waits again (the embedded server's start-up)."""
    session.execute(update(Job).where(Job.status == "queued").values(
        released_to=None, released_at=None), execution_options={"synchronize_session": False})


def request_preempt(session: Session, job_id: uuid.UUID, *, force: bool = False) -> bool:
    """Ask a running job to checkpoint and wait again. ``force`` (an admin) also preempts a
    non-preemptible job."""
    stmt = update(Job).where(Job.id == job_id, Job.status == "running",
                             Job.preempt_requested.is_(False))
    if not force:
        stmt = stmt.where(Job.preemptible.is_(True))
    return _cas(session, stmt.values(preempt_requested=True, updated_at=utcnow()))


def set_preemptible(session: Session, job_id: uuid.UUID, value: bool) -> bool:
    return _cas(session, update(Job).where(Job.id == job_id).values(preemptible=value))


def preempt_flag(session: Session, job_id: uuid.UUID, lease: str) -> bool:
    """True once this attempt has been asked to make room."""
    return bool(session.scalar(select(Job.preempt_requested).where(
        Job.id == job_id, Job.lease == lease)))


def finish_preempted(session: Session, job_id: uuid.UUID, lease: str, step: int) -> bool:
    """The attempt stopped for a preemption (its checkpoint written): back to waiting, with
    its progress, counted in ``preemptions``."""
    from service.db import jobs as jobs_db

    return jobs_db.requeue_attempt(
        session, job_id, lease, "preempted", None, preempt_requested=False,
        preemptions=Job.preemptions + 1, released_to=None, released_at=None, step=step)
