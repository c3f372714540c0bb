"""PostgreSQL faults against real API and worker processes on a cluster of the test's own:
a frozen server gets a JSON 503 with Retry-After within 5 s on every route (not a hang);
a restart mid-job costs the job nothing: it succeeds with every metric and the same attempt.
"""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from service.core.config import get_settings
from service.db import jobs as jobs_db
from service.db import metrics as metrics_db
from service.db import migrate
from service.db.models import Metric
from service.db.session import get_engine, session_scope
from tests.chaos.conftest import TERMINAL, ChaosStack, chaos_backend
from tests.conftest import long_spec, tiny_spec, wait_for


def test_frozen_database_answers_503_with_retry_after_within_5_s(
    tmp_path, redis_server, pg_cluster, procs,  # noqa: ANN001
) -> None:
    backend = chaos_backend(tmp_path, redis_server, pg_cluster)
    stack = ChaosStack(backend, procs)
    jid = stack.submit(tiny_spec(epochs=1))["id"]
    assert stack.http.get("/readyz").status_code == 200
    pg_cluster.freeze(20)
    try:
        calls = {
            "list": lambda: stack.http.get("/api/v1/jobs", timeout=15),
            "get": lambda: stack.http.get(f"/api/v1/jobs/{jid}", timeout=15),
            "submit": lambda: stack.http.post(
                "/api/v1/jobs", json={"spec": tiny_spec(), "resources": {"device": "cpu"}},
                timeout=15),
            "readyz": lambda: stack.http.get("/readyz", timeout=15),
        }
        for name, call in calls.items():
            started = time.monotonic()
            r = call()
            took = time.monotonic() - started
            assert r.status_code == 503, (name, r.status_code, r.text)
            assert took < 5.0, (name, took)
            assert r.headers["content-type"].startswith("application/json"), name
            assert int(r.headers["retry-after"]) > 0, name
            body = r.json()
            assert "unavailable" in (body.get("detail") or body.get("status")), (name, body)
            print(f"frozen database: {name} answered 503 in {took:.2f} s")
    finally:
        pg_cluster.thaw()
    # and once it is back, the same routes answer again without a restart
    wait_for(lambda: stack.http.get("/readyz").status_code == 200, 30, "readyz after thaw")
    assert stack.http.get(f"/api/v1/jobs/{jid}").status_code == 200


def test_postgres_restart_mid_job_costs_no_attempt_and_no_metric(
    tmp_path, redis_server, pg_cluster, procs,  # noqa: ANN001
) -> None:
    backend = chaos_backend(tmp_path, redis_server, pg_cluster)
    stack = ChaosStack(backend, procs)
    spec = long_spec()
    jid = stack.submit(spec)["id"]
    stack.wait_step(jid, 30)
    before = stack.job(jid)
    assert before["status"] == "running", f"the job ended before the restart: {before}"
    assert before["attempts"] == 1
    started = time.monotonic()
    pg_cluster.restart(down_s=5.0)
    back_at = time.monotonic()
    job = stack.wait_status(jid, TERMINAL, timeout=240)
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 1  # the outage was not counted as a worker loss
    assert job["progress"]["resume_step"] == 0  # never restarted from a checkpoint
    total = job["progress"]["total_steps"]
    log_every = spec["train"]["log_every"]
    expected = sorted({*range(log_every, total + 1, log_every), total})
    with session_scope(backend.db_url) as s:
        jid_u = uuid.UUID(jid)
        steps = s.scalars(select(Metric.step).where(
            Metric.job_id == jid_u, Metric.key == "loss").order_by(Metric.step)).all()
        per_key = s.execute(
            select(Metric.key, func.count(), func.count(func.distinct(Metric.step)))
            .where(Metric.job_id == jid_u).group_by(Metric.key)).all()
    assert steps == expected  # every point written, none twice
    assert all(n == distinct for _key, n, distinct in per_key)
    log = stack.worker_log()
    assert "database unavailable" in log  # the worker did ride out an outage
    print(f"postgres down {back_at - started:.1f} s; job done "
          f"{time.monotonic() - back_at:.1f} s after it returned")



def test_an_outage_past_the_grace_gives_the_job_back_without_using_an_attempt(
    tmp_path, redis_server, pg_cluster, procs,  # noqa: ANN001
) -> None:
    """Down longer than VAELAB_WORKER_DB_GRACE_S: the attempt ends `database_lost` once the
    database is back, the job is queued again with its progress and resumes from its
    checkpoint, and `attempts` is what it was."""
    backend = chaos_backend(tmp_path, redis_server, pg_cluster)
    stack = ChaosStack(backend, procs, VAELAB_WORKER_DB_GRACE_S="2")
    jid = stack.submit(long_spec())["id"]
    stack.wait_step(jid, 30)  # past the first checkpoint (step 24)
    assert stack.job(jid)["status"] == "running", "the job ended before the outage"
    pg_cluster.stop()
    down_at = time.monotonic()
    started = time.monotonic()
    r = stack.http.get(f"/api/v1/jobs/{jid}", timeout=15)  # the API, meanwhile
    took = time.monotonic() - started
    assert r.status_code == 503 and int(r.headers["retry-after"]) > 0, r.text
    assert r.json()["detail"].startswith("the database is unavailable") and took < 5.0
    print(f"database down: get answered 503 in {took:.2f} s")
    time.sleep(max(0.0, 8.0 - (time.monotonic() - down_at)))
    pg_cluster.start()
    back_at = time.monotonic()
    job = stack.wait_status(jid, TERMINAL, timeout=240)
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 1  # the lost attempt was given back
    assert job["progress"]["resume_step"] >= 24  # resumed from its checkpoint
    assert "database lost" in stack.worker_log()
    print(f"database down 8 s (grace 2 s): job done {time.monotonic() - back_at:.1f} s after "
          f"it returned, resumed at step {job['progress']['resume_step']}, "
          f"attempts {job['attempts']}")


@pytest.fixture
def short_statements(monkeypatch):  # noqa: ANN001, ANN201
    """This process's settings with a 1 s statement timeout (the watchdog cuts at 3 s)."""
    monkeypatch.setenv("VAELAB_DB_STATEMENT_TIMEOUT_S", "1")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()  # after monkeypatch has put the environment back


def test_a_metric_batch_sent_to_a_frozen_server_is_cut_off_and_the_next_one_lands(
    pg_cluster, short_statements,  # noqa: ANN001
) -> None:
    # the worker's metric insert (one statement with binary arrays) is under the same
    # deadline as every other statement: a frozen server fails it, it does not hang the sink
    migrate.upgrade(pg_cluster.url)
    with session_scope(pg_cluster.url) as s:
        jid = jobs_db.create_job(s, short_statements, tiny_spec(), owner="sink").id
    engine = get_engine(pg_cluster.url)

    def batch(step: int, freeze: bool = False) -> None:
        with engine.begin() as conn:  # checked out (and pinged) before the freeze
            if freeze:
                pg_cluster.freeze(20)
            metrics_db.insert_columns(conn, jid, ["loss", "kl"], [step, step], [1.0, 2.0],
                                      time.time())

    batch(1)
    started = time.monotonic()
    try:
        with pytest.raises(OperationalError):
            batch(2, freeze=True)
        took = time.monotonic() - started
    finally:
        pg_cluster.thaw()
    assert took < 5.0, f"the insert waited {took:.1f} s on a frozen server"
    batch(3)
    with session_scope(pg_cluster.url) as s:
        stored = s.execute(select(Metric.step, func.count()).where(Metric.job_id == jid)
                           .group_by(Metric.step).order_by(Metric.step)).all()
    assert [tuple(r) for r in stored] == [(1, 2), (3, 2)]
    print(f"frozen database: metric insert cut off after {took:.2f} s")
