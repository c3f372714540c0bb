"""The dispatcher: the only sender to the broker (an outbox on the ``jobs`` table).

Submitting, sweeps and every requeue (a worker shut down, reaped, preempted) only commit the
job as waiting. A loop in the API process (next to the reaper; in ``vaelab serve`` too, with
one slot per local worker) wakes every ``VAELAB_DISPATCH_INTERVAL_S``, or at once after a
submit in this process, and in one pass, under a PostgreSQL advisory lock so that one API
replica dispatches at a time:

1. lets released jobs that no worker claimed within ``VAELAB_DISPATCH_CLAIM_TIMEOUT_S`` (or
   whose worker went silent) wait again;
2. adds each user's running time to their decayed usage;
3. reads the running jobs, the live slots, the policies and, of the waiting jobs, only
   each (user, device kind) queue's first K (K = the live slots serving the kind; no more
   of them can be released or preempt in one pass, see
   :func:`service.core.scheduler.heads_needed`), and asks
   :func:`service.core.scheduler.decide`;
4. marks the preemptions it chose, and releases jobs in order: the release is committed
   first, then the message is sent to the chosen worker's queue. A failed send (the broker
   is down) puts the job back to waiting and the loop backs off (1 s doubling to 30 s); a
   crash between the commit and the send is covered by step 1.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from service.core.config import Settings
from service.core.scheduler import Decision, decide
from service.db import scheduling as sched_db
from service.db import workers as workers_db
from service.db.models import utcnow
from service.db.session import session_scope

log = logging.getLogger(__name__)

Send = Callable[[str, str], None]  # (job id, worker name)
MAX_BACKOFF_S = 30.0


class BrokerDown(RuntimeError):
    """A release's message could not be sent; the job waits again."""


@dataclass
class PassResult:
    released: list[tuple[str, str]] = field(default_factory=list)
    preempted: list[str] = field(default_factory=list)
    expired: int = 0
    locked_out: bool = False


def decide_now(session: Session, settings: Settings, *, heads_only: bool = False
               ) -> tuple[Decision, list]:
    """Read the state and decide, changing nothing (the queue listing, the pass, the
    benchmark). ``heads_only`` (the pass) reads only the waiting jobs that can matter to its
    releases and preemptions (:func:`service.core.scheduler.heads_needed`): the same
    releases and preemptions, but reasons and order for those jobs only."""
    live = workers_db.live(session, settings.reaper_stale_after_s)
    waiting, running, slots = sched_db.queue_state(session, settings.gpu_queue, live,
                                                   heads_only=heads_only)
    usage = sched_db.usage_now(session, utcnow(), settings.fair_share_half_life_h * 3600)
    decision = decide(waiting, running, slots, sched_db.user_policies(session), usage,
                      slot_charge_s=settings.fair_share_slot_charge_s,
                      preempt_for_fair_share=settings.preempt_for_fair_share)
    return decision, live


def dispatch_once(session: Session, settings: Settings, send: Send) -> PassResult:
    """One pass (see the module docstring). Raises :class:`BrokerDown` after putting back
    the release whose send failed."""
    out = PassResult()
    live = workers_db.live(session, settings.reaper_stale_after_s)
    out.expired = sched_db.expire_releases(session, settings.dispatch_claim_timeout_s,
                                           {name for name, _, _ in live})
    sched_db.accrue_usage(session, utcnow(), settings.fair_share_half_life_h * 3600,
                          sched_db.running_per_user(session))
    session.commit()
    decision, _ = decide_now(session, settings, heads_only=True)
    for job_id in decision.preemptions:
        if sched_db.request_preempt(session, uuid.UUID(job_id)):
            out.preempted.append(job_id)
            log.info("dispatcher: preempting job %s", job_id)
    session.commit()
    for job_id, worker in decision.releases:
        jid = uuid.UUID(job_id)
        if not sched_db.release(session, jid, worker):
            session.rollback()
            continue
        session.commit()  # durable before its message exists
        try:
            send(job_id, worker)
        except Exception as exc:  # noqa: BLE001 - the broker is down: the job waits again
            sched_db.unrelease(session, jid, worker)
            session.commit()
            raise BrokerDown(f"could not send job {job_id} to {worker}: {exc}") from exc
        out.released.append((job_id, worker))
    return out


class Dispatcher(threading.Thread):
    """The loop: :func:`dispatch_once` every interval, at once after :meth:`wake`."""

    def __init__(self, settings: Settings, send: Send | None = None):
        super().__init__(name="vaelab-dispatcher", daemon=True)
        self.settings = settings
        if send is None:
            from service.core.queue import send as send_task

            def send(job_id: str, worker: str) -> None:
                send_task(settings, job_id, worker)
        self.send = send
        self._wake = threading.Event()
        self._stop_event = threading.Event()
        self.backoff_s = 0.0

    def wake(self, *_args: object) -> None:
        self._wake.set()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self._wake.wait(self.backoff_s or self.settings.dispatch_interval_s)
            self._wake.clear()
            if self._stop_event.is_set():
                return
            self.pass_once()

    def pass_once(self) -> PassResult | None:
        try:
            with sched_db.dispatch_lock(self.settings.db_url) as mine:
                if not mine:
                    return PassResult(locked_out=True)
                with session_scope(self.settings.db_url) as s:
                    result = dispatch_once(s, self.settings, self.send)
        except BrokerDown as exc:
            self.backoff_s = min(MAX_BACKOFF_S, max(1.0, self.backoff_s * 2))
            log.warning("%s; next try in %.0f s", exc, self.backoff_s)
            return None
        except Exception:  # noqa: BLE001 - keep dispatching after a transient failure
            log.exception("dispatcher pass failed")
            time.sleep(0.5)
            return None
        self.backoff_s = 0.0
        return result

    def stop(self) -> None:
        self._stop_event.set()
        self._wake.set()
        self.join(timeout=10)


# what a member sees instead of "preempting job 3f94a365 of bob" under read_scope=owner
PREEMPTING_ANOTHERS = "preempting a running job of another user"


@dataclass
class QueueView:
    entries: list[tuple[str, str | None, object]]  # (state, reason, Job)
    workers: list[tuple[object, int, bool]]  # (Worker, busy slots, live)
    # waiting job id -> the owner of the running job it preempts
    victim_owner: dict[str, str] = field(default_factory=dict)

    def visible_to(self, owner: str | None
                   ) -> tuple[list[tuple[int, str, str | None, object]], int]:
        """``(position, state, reason, job)`` of the entries ``owner``'s jobs (None: every
        entry), each numbered by its place in the whole queue (position 5: four jobs run or
        wait ahead of it), and how many entries of other users were left out. A reason that
        names another user's job is replaced by :data:`PREEMPTING_ANOTHERS`; the other
        reasons name only the job's own owner or counts ("alice: 1 of 1 running", "behind 3
        jobs of higher priority")."""
        numbered = [(i, *e) for i, e in enumerate(self.entries, 1)]
        if owner is None:
            return numbered, 0
        shown = []
        for position, state, reason, job in numbered:
            if job.owner != owner:
                continue
            theirs = self.victim_owner.get(str(job.id))
            if theirs is not None and theirs != owner:
                reason = PREEMPTING_ANOTHERS
            shown.append((position, state, reason, job))
        return shown, len(numbered) - len(shown)


def queue_view(session: Session, settings: Settings) -> QueueView:
    """Running jobs (oldest attempt first), released ones, then the waiting ones in the
    order the dispatcher would release them, each with the reason it waits."""
    decision, live = decide_now(session, settings)
    jobs = {str(j.id): j for j in sched_db.queue_jobs(session)}
    running = sorted((j for j in jobs.values() if j.status == "running"),
                     key=lambda j: (str(j.attempt_started_at or ""), str(j.id)))
    released = sorted((j for j in jobs.values()
                       if j.status == "queued" and j.released_to is not None),
                      key=lambda j: (str(j.released_at or ""), str(j.id)))
    entries: list[tuple[str, str | None, object]] = [("running", None, j) for j in running]
    entries += [("released", f"sent to {j.released_to}", j) for j in released]
    releasing = dict(decision.releases)
    for job_id in decision.order:
        job = jobs.get(job_id)
        if job is None:
            continue
        reason = decision.reasons.get(job_id) or f"next for {releasing.get(job_id, 'a slot')}"
        entries.append(("waiting", reason, job))
    seen = {str(e[2].id) for e in entries}
    entries += [("waiting", "being cancelled", j) for j in jobs.values()
                if str(j.id) not in seen and j.status == "queued"]
    busy: dict[str, int] = {}
    for j in running:
        busy[j.worker or ""] = busy.get(j.worker or "", 0) + 1
    for j in released:
        busy[j.released_to or ""] = busy.get(j.released_to or "", 0) + 1
    names = {name for name, _, _ in live}
    workers = [(w, busy.get(w.name, 0), w.name in names) for w in workers_db.all_workers(session)]
    victim_owner = {wid: jobs[vid].owner for wid, vid in decision.preempting.items()
                    if vid in jobs}
    return QueueView(entries, workers, victim_owner)
