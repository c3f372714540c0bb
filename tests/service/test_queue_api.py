"""The queue routes in-process (TestClient) on a database of the test's own, both backends:
the listing with reasons, max_queued at submit, preempt and the preemptible flag."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.db import jobs as jobs_db
from service.db import workers as workers_db
from service.db.session import session_scope
from tests.conftest import tiny_spec
from tests.lab import as_user, fresh_backend, set_quota  # noqa: F401


@pytest.fixture
def client(fresh_backend):  # noqa: ANN001, ANN201, F811
    from service.main import create_app

    # no dispatcher thread: the listing computes the same decision without sending anything
    app = create_app(fresh_backend.settings(reaper_enabled=False, dispatch_enabled=False))
    with TestClient(app, headers=fresh_backend.auth) as c:
        c.db_url, c.backend = fresh_backend.db_url, fresh_backend
        yield c


def _submit(client, user: str, **body) -> dict:  # noqa: ANN001, ANN003
    r = client.post("/api/v1/jobs", json={"spec": tiny_spec(), **body},
                    headers=as_user(client.backend, user))
    assert r.status_code == 201, r.text
    return r.json()


def test_the_queue_lists_waiting_jobs_in_release_order_with_reasons(client) -> None:  # noqa: ANN001
    low = _submit(client, "bob")
    high = _submit(client, "carol", priority=7)
    r = client.get("/api/v1/queue")
    assert r.status_code == 200
    q = r.json()
    assert [e["job"]["id"] for e in q["items"]] == [high["id"], low["id"]]
    assert [e["reason"] for e in q["items"]] == ["no cpu worker", "no cpu worker"]
    assert (q["running"], q["waiting"], q["workers"]) == (0, 2, [])
    with session_scope(client.db_url) as s:
        workers_db.register(s, "w1", device_kind="cpu", slots=1)
    q = client.get("/api/v1/queue").json()
    assert [(e["state"], e["reason"]) for e in q["items"]] == [
        ("waiting", "next for w1"), ("waiting", "no free cpu slot")]
    from service.cli.queue import queue_text  # `vaelab queue` prints the same listing

    text = queue_text(q).splitlines()
    assert text[1].split()[:3] == ["1", high["id"][:8], "waiting"]
    assert text[1].endswith("next for w1") and text[2].endswith("no free cpu slot")
    assert text[-1] == "(0 running, 2 waiting; 0 of 1 slots busy on 1 live workers)"
    assert q["workers"][0] | {"heartbeat_at": None, "started_at": None} == {
        "name": "w1", "device_kind": "cpu", "gpu_index": None, "gpu_name": None,
        "memory_bytes": None, "slots": 1, "busy": 0, "live": True, "heartbeat_at": None,
        "started_at": None}


def test_max_queued_refuses_a_submit_with_429(client) -> None:  # noqa: ANN001
    set_quota(client.db_url, "alice", max_queued=1)
    _submit(client, "alice")
    r = client.post("/api/v1/jobs", json={"spec": tiny_spec()},
                    headers=as_user(client.backend, "alice"))
    assert r.status_code == 429
    assert r.json()["detail"] == "alice: 1 of 1 cpu jobs queued"
    _submit(client, "bob")  # another user is not affected


def test_preempt_and_the_preemptible_flag(client) -> None:  # noqa: ANN001
    job = _submit(client, "bob")
    r = client.post(f"/api/v1/jobs/{job['id']}/preempt")
    assert r.status_code == 409 and "queued, not running" in r.json()["detail"]
    r = client.post(f"/api/v1/jobs/{job['id']}/preemptible", json={"preemptible": False})
    assert r.status_code == 200 and r.json()["preemptible"] is False
    with session_scope(client.db_url) as s:
        assert jobs_db.claim(s, jobs_db.job_ids_matching(s, job["id"])[0], "l", "w1", 60)
    r = client.post(f"/api/v1/jobs/{job['id']}/preempt")  # an admin overrides the flag
    assert r.status_code == 200
    assert (r.json()["preempt_requested"], r.json()["status"]) == (True, "running")
    r = client.post(f"/api/v1/jobs/{job['id']}/preemptible", json={"preemptible": "maybe"})
    assert r.status_code == 422
