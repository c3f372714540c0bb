"""The SQL metric sink's batching (real database, both backends)."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import func, select

from service.db import jobs as jobs_db
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
        return jobs_db.create_job(s, settings, tiny_spec(), owner="sink").id


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


def _unreachable(url: str):  # noqa: ANN202
    """A real engine for a database that does not exist: every statement raises
    OperationalError, like a database that went away."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return create_engine(u.set(database=f"/nonexistent-{uuid.uuid4().hex}/x.db"))
    return create_engine(u.set(database=f"vaelab_missing_{uuid.uuid4().hex[:10]}"))


def test_failed_flush_keeps_the_points(backend) -> None:  # noqa: ANN001
    import pytest
    from sqlalchemy.exc import OperationalError

    jid = _job(backend)
    good = get_engine(backend.db_url)
    sink = SqlMetricSink(good, jid, batch_points=1000, batch_seconds=0.05)
    sink.log(1, {"a": 1.0})
    sink.engine = _unreachable(backend.db_url)  # the database goes away
    time.sleep(0.06)
    with pytest.raises(OperationalError):
        sink.log(2, {"a": 2.0})  # due: this call's flush fails...
    time.sleep(0.06)
    with pytest.raises(OperationalError):
        sink.flush_if_due()  # ...and so does the heartbeat's (which logs and carries on)
    assert sink.points_written == 0
    assert _count(backend.db_url, jid) == 0
    sink.engine = good  # the database is back: nothing was lost, order kept
    sink.log(3, {"a": 3.0})
    sink.flush()
    assert sink.points_written == 3
    with session_scope(backend.db_url) as s:
        rows = s.execute(select(Metric.step, Metric.value).where(Metric.job_id == jid)
                         .order_by(Metric.step)).all()
    assert [tuple(r) for r in rows] == [(1, 1.0), (2, 2.0), (3, 3.0)]


def test_ts_keeps_increasing_across_attempts(backend) -> None:  # noqa: ANN001
    """A resumed attempt on a host whose clock is behind still writes ts above the last
    attempt's (the SSE cursor)."""
    jid = _job(backend)
    ahead = time.time() + 3600  # the previous attempt's host was an hour ahead
    with session_scope(backend.db_url) as s:
        s.add(Metric(job_id=jid, key="a", step=1, value=1.0, ts=ahead))
    sink = SqlMetricSink(get_engine(backend.db_url), jid, batch_points=1000, batch_seconds=3600)
    sink.start(total_steps=10, start_step=1)
    sink.log(2, {"a": 2.0})
    sink.flush()
    with session_scope(backend.db_url) as s:
        ts = s.scalar(select(Metric.ts).where(Metric.job_id == jid, Metric.step == 2))
    assert ts > ahead
