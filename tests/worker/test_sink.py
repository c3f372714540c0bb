"""The SQL metric sink's batching (real database, both backends)."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import func, select

from service.core import jobs as jobops
from service.db.models import Job, Metric
from service.db.session import get_engine, session_scope
from tests.conftest import tiny_spec
from worker.sink import SqlMetricSink


def _count(url: str, jid: uuid.UUID) -> int:
    with session_scope(url) as s:
        return s.scalar(select(func.count()).select_from(Metric).where(Metric.job_id == jid))


def _job(backend) -> uuid.UUID:  # noqa: ANN001
    settings = backend.settings()
    with session_scope(settings.db_url) as s:
        return jobops.create_job(s, settings, tiny_spec(), owner="sink").id


def test_sink_batches_by_count(backend) -> None:  # noqa: ANN001
    jid = _job(backend)
    sink = SqlMetricSink(get_engine(backend.db_url), jid, batch_points=1000, batch_seconds=3600)
    for step in range(1, 250):  # 4 keys → 996 points: still buffered
        sink.log(step, {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0})
    assert _count(backend.db_url, jid) == 0
    sink.log(250, {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0})  # 1,000th point → one insert
    assert _count(backend.db_url, jid) == 1000
    sink.log(251, {"a": float("nan"), "b": float("inf")})
    sink.flush()
    assert _count(backend.db_url, jid) == 1002
    with session_scope(backend.db_url) as s:
        nan = s.scalar(select(Metric.value).where(Metric.job_id == jid, Metric.key == "a",
                                                  Metric.step == 251))
        job = s.get(Job, jid)
    assert nan is None  # non-finite stored as NULL
    assert job.latest_metrics["c"] == {"step": 250, "value": 3.0}
    assert job.step == 251


def test_sink_flushes_on_time(backend) -> None:  # noqa: ANN001
    jid = _job(backend)
    sink = SqlMetricSink(get_engine(backend.db_url), jid, batch_points=1000, batch_seconds=0.2)
    sink.log(1, {"a": 1.0})
    sink.flush_if_due()
    assert _count(backend.db_url, jid) in (0, 1)
    time.sleep(0.25)
    sink.flush_if_due()  # what the heartbeat thread does
    assert _count(backend.db_url, jid) == 1
    sink.log(2, {"a": 2.0})
    time.sleep(0.25)
    sink.log(3, {"a": 3.0})  # due: this log call flushes
    assert _count(backend.db_url, jid) == 3
