"""worker.runner: how an attempt's outcome is decided (real engine, real database)."""

from __future__ import annotations

import types
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from service.core import jobs as jobops
from service.db import jobs as jobs_db
from service.db.models import Job, utcnow
from service.db.session import get_engine, session_scope
from tests.conftest import tiny_spec
from tests.worker.test_sink import _unreachable
from worker.artifacts import SqlArtifacts
from worker.runner import _train
from worker.sink import SqlMetricSink


def test_database_error_in_training_propagates_and_the_job_stays_recoverable(
    backend, tmp_path,  # noqa: ANN001
) -> None:
    settings = backend.settings(reaper_stale_after_s=30, max_attempts=3)
    with session_scope(settings.db_url) as s:
        jid = jobs_db.create_job(s, settings, tiny_spec(), owner="runner").id
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "a", "w1", settings.reaper_stale_after_s)
    engine = get_engine(settings.db_url)
    sink = SqlMetricSink(engine, jid, "a", batch_points=10, batch_seconds=3600)
    calls = []

    def should_stop() -> bool:  # the database goes away a few steps into training
        calls.append(1)
        if len(calls) == 3:
            sink.engine = _unreachable(settings.db_url)
        return False

    hb = types.SimpleNamespace(should_stop=should_stop, cancel=False)
    with pytest.raises(OperationalError):  # not recorded as a permanent `failed`
        _train(tiny_spec(), "cpu", sink, SqlArtifacts(engine, tmp_path, jid), None, hb)
    with session_scope(settings.db_url) as s:
        job = s.get(Job, jid)
        assert (job.status, job.lease, job.error) == ("running", "a", None)
        # its heartbeat goes stale: the reaper hands it to another worker
        s.execute(update(Job).where(Job.id == jid)
                  .values(heartbeat_at=utcnow() - timedelta(seconds=120)))
    sent = []
    with session_scope(settings.db_url) as s:
        assert (str(jid), "requeued") in jobops.reap(s, settings, lambda j: sent.append(j.id))
    assert jid in sent  # (other tests' abandoned running jobs may be re-sent too)


def test_engine_warnings_are_stored_with_the_job(backend) -> None:  # noqa: ANN001
    """Bernoulli on the (grey-level) digits: the engine warns about the data and that the
    ELBO is no bound; the job row keeps each warning once."""
    from worker.runner import run_job

    settings = backend.settings()
    with session_scope(settings.db_url) as s:
        jid = jobs_db.create_job(s, settings, tiny_spec(epochs=1, eval_every_epochs=0),
                                 owner="runner", device="cpu").id
    assert run_job(str(jid), settings) == "succeeded"
    with session_scope(settings.db_url) as s:
        job = s.get(Job, jid)
        assert len(job.warnings) == len(set(job.warnings)) == 2
        assert any(w.startswith("likelihood 'bernoulli' on non-binary data")
                   for w in job.warnings)
        assert any(w.startswith("elbo/iwae of this run are not bounds") for w in job.warnings)
        assert job.timing["step_s"] > 0 and job.timing["evals_left"] == 0
