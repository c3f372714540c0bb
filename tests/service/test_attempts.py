"""A job's attempt history (``job_attempts``, both backends): opened by each claim, closed by
every state change that ends an attempt with its reason, kept across later claims, and shown
by ``GET /api/v1/jobs/{id}`` and ``vaelab status``."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from service.cli.text import summary_text
from service.core import jobs as jobops
from service.db import attempts
from service.db import jobs as jobs_db
from service.db.models import Job, utcnow
from service.db.session import get_engine, session_scope
from tests.conftest import tiny_spec


@pytest.fixture
def settings(backend):  # noqa: ANN001, ANN201
    return backend.settings(reaper_stale_after_s=30, max_attempts=5, reaper_enabled=False)


def _job(settings) -> uuid.UUID:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        return jobs_db.create_job(s, settings, tiny_spec(), owner="attempts").id


def _stale(settings, jid: uuid.UUID) -> None:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        s.execute(update(Job).where(Job.id == jid)
                  .values(heartbeat_at=utcnow() - timedelta(seconds=120)))


def _history(settings, jid: uuid.UUID) -> list[tuple]:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        return [(a.attempt, a.lease, a.worker, a.ended, a.start_step, a.end_step)
                for a in attempts.history(s, jid)]


def test_every_end_is_kept_with_its_reason(settings) -> None:  # noqa: ANN001
    jid = _job(settings)
    engine = get_engine(settings.db_url)
    # 1: the worker dies at step 30; the reaper requeues the job
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "a", "w1", 30, 5, delivery_tag="tag-a")
    jobs_db.record_progress_now(engine, jid, "a", resume_step=0, step=30)
    _stale(settings, jid)
    with session_scope(settings.db_url) as s:
        assert (str(jid), "requeued") in jobops.reap(s, settings, lambda j: None)
    # 2: claimed again (the reason of attempt 1 survives), shut down at step 40
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "b", "w2", 30, 5)
    jobs_db.record_progress_now(engine, jid, "b", resume_step=24, step=40)
    with session_scope(settings.db_url) as s:
        assert jobs_db.finish(s, jid, "b", "queued", error="worker shut down; re-enqueued")
    # 3: preempted by the dispatcher; 4: taken over by a redelivery; 5: succeeds
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "c", "w3", 30, 5)
        assert jobs_db.finish(s, jid, "c", "queued", ended="preempted", error="preempted")
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "d", "w4", 30, 5)
    _stale(settings, jid)
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "e", "w5", 30, 5, delivery_tag="tag-e")
    jobs_db.record_progress_now(engine, jid, "e", resume_step=40, step=48)
    with session_scope(settings.db_url) as s:
        assert jobs_db.finish(s, jid, "e", "succeeded", step=48)
        rows = attempts.history(s, jid)
        assert rows[1].message == "worker shut down; re-enqueued"
        assert "worker lost on attempt 1" in rows[0].message
        assert rows[3].message == "no heartbeat; taken over by attempt 5"
        assert all(r.ended_at is not None for r in rows)
        assert attempts.stale_delivery_tags(s, jid, "e") == ["tag-a"]
    assert _history(settings, jid) == [
        (1, "a", "w1", "worker_lost", 0, 30),
        (2, "b", "w2", "shut_down", 24, 40),
        (3, "c", "w3", "preempted", 40, 40),
        (4, "d", "w4", "worker_lost", 40, 40),
        (5, "e", "w5", "succeeded", 40, 48),
    ]
    assert _job_error(settings, jid) is None  # the job's error is the current one only


def _job_error(settings, jid: uuid.UUID) -> str | None:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        return s.get(Job, jid).error


def test_exhausted_and_restarted_attempts_are_closed(settings) -> None:  # noqa: ANN001
    settings = settings.model_copy(update={"max_attempts": 1})
    jid = _job(settings)
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "a", "w1", 30, 1)
    _stale(settings, jid)
    with session_scope(settings.db_url) as s:  # a redelivery finds its attempts used up
        assert not jobs_db.claim(s, jid, "b", "w2", 30, 1)
    assert [h[3] for h in _history(settings, jid)] == ["worker_lost"]
    assert _job_error(settings, jid).startswith("worker lost")
    # the embedded server's restart requeues a running job: its attempt was lost
    other = _job(settings)
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, other, "c", "w1", 30)
    with session_scope(settings.db_url) as s:
        jobops.requeue_unfinished(s, lambda j: None)
    assert [h[3] for h in _history(settings, other)] == ["worker_lost"]
    with pytest.raises(ValueError, match="unknown attempt end"):
        with session_scope(settings.db_url) as s:
            attempts.close_attempt(s, other, None, "exploded")  # type: ignore[arg-type]


def test_the_api_and_status_show_the_history(settings, backend) -> None:  # noqa: ANN001
    from service.main import create_app

    jid = _job(settings)
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "a", "w1", 30, 5)
    _stale(settings, jid)
    with session_scope(settings.db_url) as s:
        jobops.reap(s, settings, lambda j: None)
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "b", "w2", 30, 5)
    with TestClient(create_app(settings), headers=backend.auth) as client:
        r = client.get(f"/api/v1/jobs/{jid}")
    assert r.status_code == 200
    job = r.json()
    history = job["attempts_history"]
    assert [(a["attempt"], a["worker"], a["ended"]) for a in history] == [
        (1, "w1", "worker_lost"), (2, "w2", None)]
    assert history[0]["ended_at"] is not None and history[1]["ended_at"] is None
    assert "worker lost on attempt 1" in history[0]["message"]
    assert "lease" not in history[0] and "delivery_tag" not in history[0]
    text = summary_text(job)
    assert "attempt 1: worker_lost at step 0 (from 0) on w1 - worker lost on attempt 1" in text
    assert "attempt 2: running (from 0) on w2" in text
