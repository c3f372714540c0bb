"""Job life cycle: submitting (validate, record as waiting), cancelling, the reaper's pass,
and the embedded server's recovery at start-up.

The state changes themselves are :mod:`service.db.jobs`; this module decides when to make
them. Nothing here sends to the broker: a job committed as waiting is released by the
dispatcher (:mod:`service.core.dispatcher`), which ``notify`` wakes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from service.core import budget
from service.core.config import Settings
from service.core.datasets import confine_dataset
from service.core.queue import forget_deliveries
from service.db import attempts
from service.db import jobs as jobs_db
from service.db.models import TERMINAL, Job
from service.db.session import unavailable_within

log = logging.getLogger(__name__)

Enqueue = Callable[[Job], None]  # "a job is waiting": wakes the dispatcher (never fails)


class QueueUnavailable(RuntimeError):
    """Kept for callers of the old API; the broker's state no longer fails a submit."""


class QuotaExceeded(RuntimeError):
    """The user has as many jobs waiting as their ``max_queued`` allows."""


class JobFinished(RuntimeError):
    """The job has already ended (a cancel came too late)."""


class JobActive(RuntimeError):
    """The job is queued or running (it cannot be deleted yet)."""


def resolve_spec(raw: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The validated spec with defaults filled in and its dataset confined to the dataset
    root, within the deployment's budget. Raises ``vae_engine.errors.SpecError`` or
    ``UnsafeUserFile``."""
    from vae_engine.spec import parse_spec

    spec = parse_spec(raw)
    budget.check(spec, settings)
    return confine_dataset(spec.model_dump(mode="json"), settings.datasets)


def check_queued_quota(session: Session, settings: Settings, owner: str, device: str,
                       adding: int = 1) -> None:
    """Raise :class:`QuotaExceeded` if ``adding`` more jobs on ``device``'s kind would take
    ``owner`` past their ``max_queued``."""
    from service.db import scheduling as sched_db

    policy = sched_db.user_policies(session, owner).get(owner)
    cap = policy.max_queued if policy is not None else None
    if cap is None:
        return
    queue = settings.queue_for(device)
    n = sched_db.waiting_count(session, owner, queue)
    if n + adding > cap:
        kind = sched_db.kind_of(queue, settings.gpu_queue)
        raise QuotaExceeded(f"{owner}: {n} of {cap} {kind} jobs queued"
                            + (f"; {adding} more do not fit" if adding > 1 else ""))


def submit(session: Session, settings: Settings, notify: Enqueue, spec: dict[str, Any],
           **fields: Any) -> Job:
    """Record a job as waiting (the dispatcher sends it when a slot is free) and wake the
    dispatcher. Raises :class:`QuotaExceeded`. The broker's state does not matter here."""
    from service.core.inputs import checksums

    check_queued_quota(session, settings, fields["owner"], fields.get("device", "auto"))
    fields.setdefault("input_sha256", checksums(spec, settings.datasets))
    job = jobs_db.create_job(session, settings, spec, **fields)
    session.commit()
    notify(job)
    return job


def cancel(session: Session, job: Job) -> Job:
    """Queued → cancelled; running → stops at its next step. Raises :class:`JobFinished`."""
    if job.status in TERMINAL:
        raise JobFinished(f"job {job.id} is already {job.status}")
    updated = jobs_db.request_cancel(session, job.id)
    session.commit()
    return updated


def delete(session: Session, settings: Settings, job: Job) -> None:
    """Remove a finished job: its row, tags, metrics, evaluations, artifact rows (one
    transaction), then its files. Raises :class:`JobActive` while it is queued or running.
    A crash after the commit leaves only stray files under the job's folder."""
    import shutil

    from service.db.artifacts import delete_job_artifacts
    from service.db.evaluations import delete_job_evaluations
    from service.db.metrics import delete_job_metrics

    job_id, status = job.id, job.status
    session.expunge(job)
    if not jobs_db.delete_finished(session, job_id):
        session.rollback()
        raise JobActive(f"job {job_id} is {status}: cancel it first, then delete it")
    delete_job_metrics(session, job_id)
    delete_job_evaluations(session, job_id)
    delete_job_artifacts(session, job_id)
    session.commit()
    folder = (settings.artifacts / str(job_id)).resolve()
    if folder.is_relative_to(settings.artifacts) and folder != settings.artifacts:
        shutil.rmtree(folder, ignore_errors=True)


def reap(session: Session, settings: Settings, notify: Enqueue) -> list[tuple[str, str]]:
    """Put running jobs whose heartbeat is stale back to waiting; fail them after
    ``max_attempts``. Skipped while this process has seen the database unavailable within
    the stale window (a database outage is not a worker loss). Returns
    ``[(job_id, "requeued" | "failed" | "cancelled")]``. Safe to run from several processes:
    each change is a compare-and-set. (A released job that no worker claims is the
    dispatcher's: it releases it again.)"""
    actions: list[tuple[str, str]] = []
    if unavailable_within(settings.db_url, settings.reaper_stale_after_s):
        # the database itself was away within the stale window: a heartbeat older than the
        # window may be one the worker could not write. Reaping now would count a database
        # outage as a worker loss (an attempt used); wait until the window has passed with
        # the database up, which gives every live worker time to beat again.
        log.info("reaper: database unavailable within the last %.0f s; not reaping yet",
                 settings.reaper_stale_after_s)
        return actions
    candidates, stale = jobs_db.stale_running(session, settings.reaper_stale_after_s)
    for job in candidates:
        action = jobs_db.reap_job(session, job, stale, settings.max_attempts)
        if action is None:
            continue
        session.commit()  # the state change is durable before its message is sent
        # the lost attempt's message (unacked on Redis until the visibility timeout) is stale
        forget_deliveries(settings, attempts.stale_delivery_tags(session, job.id))
        if action == "requeued":
            notify(job)
        log.warning("reaper: job %s %s", job.id, action)
        actions.append((str(job.id), action))
    session.commit()
    return actions


def requeue_unfinished(session: Session, notify: Enqueue) -> list[str]:
    """Embedded server start-up: it owns the only worker, so every running job is an orphan
    of the previous run and every released job's message may be lost: all wait again, for
    the dispatcher to release."""
    from service.db import scheduling as sched_db
    from service.db import workers as workers_db

    queued = jobs_db.requeue_running(session)
    sched_db.forget_releases(session)
    workers_db.forget_all(session)
    session.commit()
    for job in queued:
        notify(job)
    return [str(job.id) for job in queued]
