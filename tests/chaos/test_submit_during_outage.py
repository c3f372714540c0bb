"""Chaos (e): a job submitted while the broker is down is accepted (201, waiting, not
failed) and runs once the broker is back, with no operator action. Real API and worker
processes on a Redis of the test's own; the database is SQLite or PostgreSQL."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.db import migrate
from tests.chaos.servers import RedisServer
from tests.conftest import (
    ADMIN,
    Backend,
    Procs,
    _make_postgres,
    _pg_reachable,
    make_user,
    tiny_spec,
    wait_for,
)
from tests.lab import as_user


@pytest.fixture(params=["sqlite", "postgres"])
def outage_backend(request, tmp_path: Path) -> Iterator[tuple[Backend, RedisServer]]:  # noqa: ANN001
    redis = RedisServer(tmp_path)
    redis.start()
    if request.param == "postgres":
        if not _pg_reachable():
            pytest.fail("PostgreSQL unreachable")
        backend = dataclasses.replace(_make_postgres(tmp_path), broker_url=redis.url)
    else:
        backend = Backend("sqlite", f"sqlite:///{tmp_path / 'vaelab.db'}", redis.url,
                          tmp_path, "_outage")
    migrate.upgrade(backend.db_url)
    backend.token = make_user(backend.db_url, ADMIN, "admin")
    try:
        yield backend, redis
    finally:
        redis.stop()
        for fn in backend.cleanup:
            fn()


def test_a_job_submitted_while_the_broker_is_down_runs_after_it_returns(
        outage_backend, procs: Procs) -> None:  # noqa: ANN001
    backend, redis = outage_backend
    url = procs.api(backend)
    procs.worker(backend)
    http = httpx.Client(base_url=url, timeout=30, headers=as_user(backend, "outage"))
    wait_for(lambda: http.get("/api/v1/queue").json()["workers"], 60, "the worker's slots")

    redis.stop()
    r = http.post("/api/v1/jobs", json={"spec": tiny_spec(epochs=1),
                                        "resources": {"device": "cpu"}})
    assert r.status_code == 201, r.text
    jid = r.json()["id"]
    for _ in range(3):  # the dispatcher tries, fails, backs off: the job keeps waiting
        job = http.get(f"/api/v1/jobs/{jid}").json()
        assert (job["status"], job["error"]) == ("queued", None)
        time.sleep(1.0)
    entry = [e for e in http.get("/api/v1/queue").json()["items"] if e["job"]["id"] == jid]
    # waiting, or for the second a send attempt takes, released (committed before the send)
    assert entry and entry[0]["state"] in {"waiting", "released"}

    redis.start()
    job = wait_for(lambda: (j := http.get(f"/api/v1/jobs/{jid}").json())["status"]
                   in {"succeeded", "failed", "cancelled"} and j, 120,
                   "the job to finish after the broker returned")
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 1
