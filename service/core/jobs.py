"""Job life cycle across the database and the queue: submitting (validate, record, send),
cancelling, the reaper's pass, and the embedded server's re-send at start-up.

The state changes themselves are :mod:`service.db.jobs`; this module decides when to make
them and sends the Celery message after the change is committed.
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

Enqueue = Callable[[Job], None]


class QueueUnavailable(RuntimeError):
    """The broker refused a job's message; the job was recorded and marked."""


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


def submit(session: Session, settings: Settings, enqueue: Enqueue, spec: dict[str, Any],
           **fields: Any) -> Job:
    """Record a job and send it. A broker failure keeps the record, marked failed, and
    raises :class:`QueueUnavailable`."""
    from service.core.inputs import checksums

    fields.setdefault("input_sha256", checksums(spec, settings.datasets))
    job = jobs_db.create_job(session, settings, spec, **fields)
    session.commit()
    try:
        enqueue(job)
    except Exception as exc:  # noqa: BLE001 - the broker is down: say so, keep the record
        log.exception("enqueue failed for job %s", job.id)
        jobs_db.mark_unsent(session, job, f"could not enqueue: {exc}")
        session.commit()
        raise QueueUnavailable(str(exc)) from exc
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


def reap(session: Session, settings: Settings, enqueue: Enqueue) -> list[tuple[str, str]]:
    """Re-enqueue running jobs whose heartbeat is stale; fail them after ``max_attempts``.
    Skipped while this process has seen the database unavailable within the stale window
    (a database outage is not a worker loss).

    Returns ``[(job_id, "requeued" | "failed" | "cancelled" | "resent")]``. Safe to run from
    several processes: each change is a compare-and-set.
    """
    actions: list[tuple[str, str]] = []
    if unavailable_within(settings.db_url, settings.reaper_stale_after_s):
        # the database itself was away within the stale window: a heartbeat older than the
        # window may be one the worker could not write. Reaping now would count a database
        # outage as a worker loss (an attempt used); wait until the window has passed with
        # the database up, which gives every live worker time to beat again.
        log.info("reaper: database unavailable within the last %.0f s; not reaping yet",
                 settings.reaper_stale_after_s)
        return actions + _resend_queued(session, settings, enqueue)
    candidates, stale = jobs_db.stale_running(session, settings.reaper_stale_after_s)
    for job in candidates:
        action = jobs_db.reap_job(session, job, stale, settings.max_attempts)
        if action is None:
            continue
        session.commit()  # the state change is durable before its message is sent
        # the lost attempt's message (unacked on Redis until the visibility timeout) is stale
        forget_deliveries(settings, attempts.stale_delivery_tags(session, job.id))
        if action == "requeued":
            session.refresh(job)
            enqueue(job)
        log.warning("reaper: job %s %s", job.id, action)
        actions.append((str(job.id), action))
    session.commit()
    actions.extend(_resend_queued(session, settings, enqueue))
    return actions


def _resend_queued(session: Session, settings: Settings,
                   enqueue: Enqueue) -> list[tuple[str, str]]:
    """Send again the jobs queued (or last sent) over ``reaper_requeue_queued_after_s`` ago:
    a job is committed as ``queued`` before its message is sent, so a crash or a broker
    failure in between leaves it with no message. A job still waiting behind others gets a
    duplicate, which ``claim`` drops (at most one per job per interval)."""
    actions: list[tuple[str, str]] = []
    for job in jobs_db.stale_queued(session, settings.reaper_requeue_queued_after_s):
        since = job.updated_at
        if not jobs_db.touch_queued(session, job):
            continue
        session.commit()
        enqueue(job)  # a broker failure here: the next pass, an interval later, tries again
        log.warning("reaper: job %s queued since %s; message re-sent", job.id, since)
        actions.append((str(job.id), "resent"))
    return actions


def requeue_unfinished(session: Session, enqueue: Enqueue) -> list[str]:
    """Embedded server start-up: it owns the only worker, so every running job is an orphan
    of the previous run and every queued job may have lost its message. Re-send them all;
    a duplicate message is dropped by ``claim``."""
    queued = jobs_db.requeue_running(session)
    session.commit()
    for job in queued:
        enqueue(job)
    return [str(job.id) for job in queued]
