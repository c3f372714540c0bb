"""Fencing (both backends, a real database): every write an attempt makes holds only while
its lease does. Each case: attempt "a" claims the job, goes silent, attempt "b" takes it over;
then "a" tries a write → ``LeaseLost`` and nothing of it is stored (no row, no file, no job
field), while the same write by "b" is stored."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from service.db import jobs as jobs_db
from service.db.attempts import LeaseLost
from service.db.evaluations import record_evaluation
from service.db.models import Artifact, Evaluation, Job, Metric, utcnow
from service.db.session import get_engine, session_scope
from tests.conftest import tiny_spec
from worker.artifacts import SqlArtifacts
from worker.sink import SqlMetricSink


@pytest.fixture
def taken_over(backend):  # noqa: ANN001, ANN201
    """A job claimed by lease "a", then taken over (stale heartbeat) by lease "b"."""
    settings = backend.settings(reaper_stale_after_s=30)
    with session_scope(settings.db_url) as s:
        jid = jobs_db.create_job(s, settings, tiny_spec(), owner="fence").id
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "a", "w1", 30)
    with session_scope(settings.db_url) as s:
        s.execute(update(Job).where(Job.id == jid)
                  .values(heartbeat_at=utcnow() - timedelta(seconds=120)))
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "b", "w2", 30)
    return settings, jid


def _job(url: str, jid: uuid.UUID) -> Job:
    with session_scope(url) as s:
        return s.get(Job, jid)


def _count(url: str, model, jid: uuid.UUID) -> int:  # noqa: ANN001
    with session_scope(url) as s:
        return s.scalar(select(func.count()).select_from(model).where(model.job_id == jid))


def test_metric_batches_of_a_stale_attempt_are_rolled_back(taken_over) -> None:  # noqa: ANN001
    settings, jid = taken_over
    engine = get_engine(settings.db_url)
    before = _job(settings.db_url, jid)
    old = SqlMetricSink(engine, jid, "a", batch_points=1000, batch_seconds=3600)
    old.log(5, {"loss": 1.0, "rate": 2.0})
    with pytest.raises(LeaseLost):
        old.flush()
    assert old.lost
    old.log(10, {"loss": 1.0})  # buffered no more, written never
    old.flush_if_due()  # the heartbeat's flush: no raise, still nothing
    with pytest.raises(LeaseLost):
        old.flush()
    assert _count(settings.db_url, Metric, jid) == 0
    after = _job(settings.db_url, jid)
    assert (after.step, after.latest_metrics, after.timing) == (
        before.step, before.latest_metrics, before.timing)
    new = SqlMetricSink(engine, jid, "b", batch_points=1000, batch_seconds=3600)
    new.log(5, {"loss": 1.0, "rate": 2.0})
    new.flush()
    assert _count(settings.db_url, Metric, jid) == 2
    assert _job(settings.db_url, jid).latest_metrics["loss"] == {"step": 5, "value": 1.0}


def test_progress_and_start_of_a_stale_attempt_are_not_written(taken_over) -> None:  # noqa: ANN001
    settings, jid = taken_over
    engine = get_engine(settings.db_url)
    old = SqlMetricSink(engine, jid, "a")
    with pytest.raises(LeaseLost):
        old.start(100, 24)
    with pytest.raises(LeaseLost):
        jobs_db.record_progress_now(engine, jid, "a", warnings=["stale"])
    job = _job(settings.db_url, jid)
    assert (job.total_steps, job.resume_step, job.warnings) == (None, None, None)
    SqlMetricSink(engine, jid, "b").start(100, 24)
    jobs_db.record_progress_now(engine, jid, "b", warnings=["fresh"])
    job = _job(settings.db_url, jid)
    assert (job.total_steps, job.resume_step, job.warnings) == (100, 24, ["fresh"])


def test_evaluations_of_a_stale_attempt_are_not_written(taken_over) -> None:  # noqa: ANN001
    settings, jid = taken_over
    engine = get_engine(settings.db_url)
    old = SqlMetricSink(engine, jid, "a")
    with pytest.raises(LeaseLost):
        old.log_eval(24, {"elbo": -100.0})
    with pytest.raises(LeaseLost):
        record_evaluation(engine, jid, 48, {"elbo": -90.0}, "a")
    assert _count(settings.db_url, Evaluation, jid) == 0
    assert _job(settings.db_url, jid).summary is None
    SqlMetricSink(engine, jid, "b").log_eval(24, {"elbo": -99.0})
    assert _count(settings.db_url, Evaluation, jid) == 1
    assert _job(settings.db_url, jid).summary == {"elbo": -99.0}


def test_artifacts_of_a_stale_attempt_leave_no_row_and_no_file(taken_over) -> None:  # noqa: ANN001
    settings, jid = taken_over
    engine = get_engine(settings.db_url)
    root = Path(settings.artifacts)
    old = SqlArtifacts(engine, root, jid, lease="a")
    for kind, name in (("checkpoint", "step_00000024.safetensors"),
                       ("samples", "samples_00000024.png")):
        with pytest.raises(LeaseLost):
            old.write(kind, 24, name, b"stale bytes")
    assert _count(settings.db_url, Artifact, jid) == 0
    folder = root / str(jid)
    assert not [p for p in folder.rglob("*") if p.is_file()]  # not even a temporary file
    new = SqlArtifacts(engine, root, jid, lease="b")
    path = Path(new.write("checkpoint", 24, "step_00000024.safetensors", b"fresh"))
    assert path.read_bytes() == b"fresh"
    assert [p.name for p in folder.rglob("*") if p.is_file()] == [path.name]
    assert _count(settings.db_url, Artifact, jid) == 1


def test_outcome_of_a_stale_attempt_is_not_recorded(taken_over) -> None:  # noqa: ANN001
    settings, jid = taken_over
    with session_scope(settings.db_url) as s:
        assert not jobs_db.finish(s, jid, "a", "failed", error="stale")
        assert not jobs_db.beat(s, jid, "a", 99)
        assert jobs_db.attempt_flags(s, jid, "a") == (True, False)
    job = _job(settings.db_url, jid)
    assert (job.status, job.lease, job.error, job.step) == ("running", "b", None, 0)
