"""Claiming and reaping against a real database (both backends): service.db.jobs and
service.core.jobs.reap."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from service.core import jobs as jobops
from service.db import jobs as jobs_db
from service.db.models import Job, utcnow
from service.db.session import session_scope
from tests.conftest import tiny_spec


@pytest.fixture
def settings(backend):  # noqa: ANN001, ANN201
    return backend.settings(reaper_stale_after_s=30, max_attempts=2)


def _job(settings) -> uuid.UUID:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        job = jobs_db.create_job(s, settings, tiny_spec(), owner="reaper-test")
        return job.id


def _age_heartbeat(settings, jid: uuid.UUID, seconds: float) -> None:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        s.execute(update(Job).where(Job.id == jid)
                  .values(heartbeat_at=utcnow() - timedelta(seconds=seconds)))


def _get(settings, jid: uuid.UUID) -> Job:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        return s.get(Job, jid)


def test_claim_is_exclusive_and_duplicates_are_dropped(settings) -> None:  # noqa: ANN001
    jid = _job(settings)
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "a", "w1", settings.reaper_stale_after_s)
    with session_scope(settings.db_url) as s:  # a duplicate message while it runs
        assert not jobs_db.claim(s, jid, "b", "w2", settings.reaper_stale_after_s)
    job = _get(settings, jid)
    assert (job.status, job.lease, job.attempts) == ("running", "a", 1)
    with session_scope(settings.db_url) as s:
        assert not jobs_db.finish(s, jid, "b", "succeeded")  # not the lease holder
        assert jobs_db.finish(s, jid, "a", "succeeded")
    with session_scope(settings.db_url) as s:
        assert not jobs_db.claim(s, jid, "c", "w3", settings.reaper_stale_after_s)
    assert _get(settings, jid).status == "succeeded"


def test_reaper_requeues_stale_jobs_then_fails_them(settings) -> None:  # noqa: ANN001
    jid = _job(settings)
    sent: list[uuid.UUID] = []
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "a", "w1", settings.reaper_stale_after_s)
    with session_scope(settings.db_url) as s:  # fresh heartbeat: left alone
        assert (str(jid), "requeued") not in jobops.reap(s, settings, lambda j: sent.append(j.id))
    assert _get(settings, jid).status == "running"

    _age_heartbeat(settings, jid, 120)
    with session_scope(settings.db_url) as s:
        actions = jobops.reap(s, settings, lambda j: sent.append(j.id))
    assert (str(jid), "requeued") in actions
    assert sent == [jid]
    job = _get(settings, jid)
    assert job.status == "queued" and job.lease is None
    assert "worker lost" in job.error

    # a second attempt dies too: attempts (2) == max_attempts → failed with the reason
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "b", "w2", settings.reaper_stale_after_s)
    _age_heartbeat(settings, jid, 120)
    with session_scope(settings.db_url) as s:
        actions = jobops.reap(s, settings, lambda j: sent.append(j.id))
    assert (str(jid), "failed") in actions
    assert sent == [jid]
    job = _get(settings, jid)
    assert job.status == "failed"
    assert "attempt 2 of 2" in job.error and job.finished_at is not None


def test_redelivered_message_takes_over_a_stale_running_job(settings) -> None:  # noqa: ANN001
    jid = _job(settings)
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "a", "w1", settings.reaper_stale_after_s)
    _age_heartbeat(settings, jid, 120)
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "b", "w2", settings.reaper_stale_after_s)
    job = _get(settings, jid)
    assert (job.lease, job.attempts, job.worker) == ("b", 2, "w2")
    with session_scope(settings.db_url) as s:
        assert not jobs_db.finish(s, jid, "a", "failed")  # the old attempt is fenced off


def test_cancel_requested_on_a_dead_worker_ends_cancelled(settings) -> None:  # noqa: ANN001
    jid = _job(settings)
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "a", "w1", settings.reaper_stale_after_s)
        jobs_db.request_cancel(s, jid)
    _age_heartbeat(settings, jid, 120)
    with session_scope(settings.db_url) as s:
        jobops.reap(s, settings, lambda j: pytest.fail("must not requeue"))
    assert _get(settings, jid).status == "cancelled"


def test_requeue_unfinished_resends_queued_and_orphaned_jobs(settings) -> None:  # noqa: ANN001
    queued, running = _job(settings), _job(settings)
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, running, "a", "w1", settings.reaper_stale_after_s)
    sent: list[uuid.UUID] = []
    with session_scope(settings.db_url) as s:
        jobops.requeue_unfinished(s, lambda j: sent.append(j.id))
    assert {queued, running} <= set(sent)
    assert _get(settings, running).status == "queued"


def test_redelivery_cannot_exceed_max_attempts(settings) -> None:  # noqa: ANN001
    """A redelivered message (not the reaper) finds a stale job whose attempts are used up:
    it ends failed with the reason, as the reaper would record it, and does not run again."""
    jid = _job(settings)
    for n, lease in enumerate(("a", "b"), start=1):  # max_attempts = 2
        with session_scope(settings.db_url) as s:
            assert jobs_db.claim(s, jid, lease, "w", settings.reaper_stale_after_s,
                                settings.max_attempts)
        assert _get(settings, jid).attempts == n
        _age_heartbeat(settings, jid, 120)
    with session_scope(settings.db_url) as s:
        assert not jobs_db.claim(s, jid, "c", "w", settings.reaper_stale_after_s,
                                settings.max_attempts)
    job = _get(settings, jid)
    assert (job.status, job.attempts, job.lease) == ("failed", 2, None)
    assert "attempt 2 of 2" in job.error and job.finished_at is not None
