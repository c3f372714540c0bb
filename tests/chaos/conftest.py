"""Fixtures for the chaos tests: a Redis and a PostgreSQL of the test's own (see
:mod:`tests.chaos.servers`), and :class:`ChaosStack`, real ``vaelab api`` and
``vaelab worker`` processes pointed at them (started through ``tests.conftest.Procs``).

Short timers throughout (heartbeat 0.5 s, stale after 6 s, reaper every 1 s, database
timeouts of 2 s), so each test runs in well under a minute on a quiet machine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.chaos.servers import PostgresCluster, RedisServer
from tests.conftest import ADMIN, Backend, Procs, make_user, wait_for

TERMINAL = {"succeeded", "failed", "cancelled"}

# database timeouts short enough that a frozen server is noticed in a couple of seconds
CHAOS_ENV = {
    "VAELAB_DB_CONNECT_TIMEOUT_S": "2",
    "VAELAB_DB_PING_TIMEOUT_S": "1.5",
    "VAELAB_DB_STATEMENT_TIMEOUT_S": "5",
    "VAELAB_DB_POOL_TIMEOUT_S": "2",
}


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_cluster(tmp_path: Path) -> Iterator[PostgresCluster]:
    cluster = PostgresCluster(tmp_path)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()


def chaos_backend(tmp: Path, redis: RedisServer, pg: PostgresCluster | None = None) -> Backend:
    """A migrated :class:`tests.conftest.Backend` on the test's own servers; without ``pg``,
    on SQLite (for tests that only disturb the broker)."""
    from service.db import migrate

    db_url = pg.url if pg is not None else f"sqlite:///{tmp / 'vaelab.db'}"
    backend = Backend("chaos", db_url, redis.url, tmp, f"_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(db_url)
    backend.token = make_user(db_url, ADMIN, "admin")
    return backend


class ChaosStack:
    """An API and a worker process on ``backend``, and an HTTP client for the API."""

    def __init__(self, backend: Backend, procs: Procs, **env: str):
        self.backend, self.procs = backend, procs
        self.env = {**CHAOS_ENV, **env}
        self.url = procs.api(backend, **self.env)
        self.worker = self.start_worker()
        self.http = httpx.Client(base_url=self.url, timeout=30,
                                 headers=backend.auth)

    def start_worker(self):  # noqa: ANN201
        self.worker = self.procs.worker(self.backend, **self.env)
        return self.worker

    def submit(self, spec: dict, **body) -> dict:  # noqa: ANN003
        r = self.http.post("/api/v1/jobs", json={"spec": spec, "resources": {"device": "cpu"},
                                                 **body})
        assert r.status_code == 201, r.text
        return r.json()

    def job(self, jid: str) -> dict:
        r = self.http.get(f"/api/v1/jobs/{jid}")
        assert r.status_code == 200, r.text
        return r.json()

    def try_job(self, jid: str) -> dict | None:
        """The job, or None while the API answers anything but 200 (a dependency down)."""
        try:
            r = self.http.get(f"/api/v1/jobs/{jid}", timeout=10)
        except httpx.TransportError:
            return None
        return r.json() if r.status_code == 200 else None

    def wait_status(self, jid: str, statuses: set[str], timeout: float = 180) -> dict:
        return wait_for(lambda: (j := self.try_job(jid)) and j["status"] in statuses and j,
                        timeout, f"job {jid} to reach {statuses}")

    def wait_step(self, jid: str, step: int, timeout: float = 120) -> dict:
        return wait_for(lambda: (j := self.try_job(jid)) and j["progress"]["step"] >= step
                        and j, timeout, f"job {jid} to pass step {step}")

    def worker_log(self) -> str:
        return Path(self.worker.log_path).read_text()

