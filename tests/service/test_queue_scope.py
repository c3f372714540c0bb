"""`GET /api/v1/queue` (and `vaelab queue`'s text) under VAELAB_READ_SCOPE=owner, both
backends: a member sees only their own entries, at their place in the whole queue, with a
count of the entries left out, and no other user's job id, name, tags or user name (a reason
naming another's job is replaced); an admin sees everything; under `lab` nothing changes."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from service.cli.queue import queue_text
from service.core.dispatcher import PREEMPTING_ANOTHERS
from service.db import jobs as jobs_db
from service.db import workers as workers_db
from service.db.session import session_scope
from tests.conftest import tiny_spec
from tests.lab import as_user, fresh_backend  # noqa: F401


def _submit(client: TestClient, user: str, name: str, priority: int) -> str:
    spec = tiny_spec() | {"name": name}
    r = client.post("/api/v1/jobs", headers=as_user(client.backend, user),
                    json={"spec": spec, "priority": priority, "tags": [f"tag-{name}"]})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _app(backend, read_scope: str):  # noqa: ANN001, ANN202
    from service.main import create_app

    return create_app(backend.settings(reaper_enabled=False, dispatch_enabled=False,
                                       read_scope=read_scope))


def test_owner_scope_shows_a_member_only_their_own_queue_entries(fresh_backend) -> None:  # noqa: ANN001, F811
    b = fresh_backend
    with TestClient(_app(b, "owner"), headers=b.auth) as c:
        c.backend = b
        with session_scope(b.db_url) as s:
            workers_db.register(s, "w1", device_kind="cpu", slots=1)
        bob = _submit(c, "bob", "bob-secret-run", 0)
        with session_scope(b.db_url) as s:  # bob's job runs on the only slot
            assert jobs_db.claim(s, uuid.UUID(bob), "L", "w1", 60)
        a1 = _submit(c, "alice", "alice-first", 5)  # preempts bob's job
        carol = _submit(c, "carol", "carol-secret-run", 3)
        a2 = _submit(c, "alice", "alice-second", 0)

        admin = c.get("/api/v1/queue")
        assert admin.status_code == 200
        everything = admin.json()
        assert [(e["position"], e["job"]["id"], e["reason"]) for e in everything["items"]] == [
            (1, bob, None), (2, a1, f"preempting job {bob[:8]} of bob"),
            (3, carol, "behind 1 job of higher priority"),
            (4, a2, "behind 2 jobs of higher priority")]
        assert (everything["running"], everything["waiting"], everything["hidden"]) == (1, 3, 0)

        r = c.get("/api/v1/queue", headers=as_user(b, "alice"))
        assert r.status_code == 200
        mine = r.json()
        assert [(e["position"], e["state"], e["job"]["id"], e["reason"])
                for e in mine["items"]] == [
            (2, "waiting", a1, PREEMPTING_ANOTHERS),
            (4, "waiting", a2, "behind 2 jobs of higher priority")]
        assert (mine["running"], mine["waiting"], mine["hidden"]) == (1, 3, 2)
        for secret in (bob, bob[:8], carol, carol[:8], "bob", "carol", "secret-run"):
            assert secret not in r.text, secret
        text = queue_text(mine)
        assert "bob" not in text and "carol" not in text
        assert text.splitlines()[-1] == ("(2 jobs of other users not shown: the lab's read "
                                         "scope is owner-only)")

        theirs = c.get("/api/v1/queue", headers=as_user(b, "bob")).json()
        assert [(e["position"], e["state"], e["job"]["id"]) for e in theirs["items"]] == [
            (1, "running", bob)]
        assert theirs["hidden"] == 3 and "alice" not in str(theirs)

        dave = c.get("/api/v1/queue", headers=as_user(b, "dave")).json()  # nothing queued
        assert (dave["items"], dave["hidden"], dave["running"], dave["waiting"]) == \
            ([], 4, 1, 3)

    with TestClient(_app(b, "lab"), headers=as_user(b, "alice")) as lab:
        shared = lab.get("/api/v1/queue").json()  # the default scope: everyone sees all
        assert [e["job"]["id"] for e in shared["items"]] == [bob, a1, carol, a2]
        assert shared["items"][1]["reason"] == f"preempting job {bob[:8]} of bob"
        assert shared["hidden"] == 0
        assert "not shown" not in queue_text(shared)


def test_owner_scope_keeps_a_reason_that_names_the_members_own_job(fresh_backend) -> None:  # noqa: ANN001, F811
    b = fresh_backend
    with TestClient(_app(b, "owner"), headers=as_user(b, "alice")) as c:
        c.backend = b
        with session_scope(b.db_url) as s:
            workers_db.register(s, "w1", device_kind="cpu", slots=1)
        low = _submit(c, "alice", "alice-low", 0)
        with session_scope(b.db_url) as s:
            assert jobs_db.claim(s, uuid.UUID(low), "L", "w1", 60)
        high = _submit(c, "alice", "alice-high", 6)
        q = c.get("/api/v1/queue").json()
        assert [(e["job"]["id"], e["reason"]) for e in q["items"]] == [
            (low, None), (high, f"preempting job {low[:8]} of alice")]
        assert q["hidden"] == 0
