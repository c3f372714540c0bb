"""The lab queue end to end, over real HTTP with real worker processes (both backends):
a user's quota on two slots, a preemption that resumes exactly, and one for fair share."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from service.db.models import Metric
from service.db.session import session_scope
from tests.conftest import Procs, long_spec, tiny_spec, wait_for
from tests.lab import as_user, fresh_backend, set_quota  # noqa: F401

TERMINAL = {"succeeded", "failed", "cancelled"}


def _submit(http: httpx.Client, backend, user: str, spec: dict, **body) -> str:  # noqa: ANN001, ANN003
    r = http.post("/api/v1/jobs", json={"spec": spec, "resources": {"device": "cpu"}, **body},
                  headers=as_user(backend, user))
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _job(http: httpx.Client, jid: str) -> dict:
    return http.get(f"/api/v1/jobs/{jid}").json()


def _wait_done(http: httpx.Client, jid: str, timeout: float = 300) -> dict:
    return wait_for(lambda: (j := _job(http, jid))["status"] in TERMINAL and j, timeout,
                    f"job {jid} to finish")


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_quota_alice_never_has_two_running_and_bob_goes_before_her_second(
        fresh_backend, procs: Procs) -> None:  # noqa: ANN001, F811
    set_quota(fresh_backend.db_url, "alice", max_running=1)
    url = procs.api(fresh_backend)
    procs.worker(fresh_backend)
    procs.worker(fresh_backend)
    http = httpx.Client(base_url=url, timeout=30, headers=fresh_backend.auth)
    wait_for(lambda: len(http.get("/api/v1/queue").json()["workers"]) == 2, 90, "two workers")

    alice = [_submit(http, fresh_backend, "alice", tiny_spec(epochs=2)) for _ in range(3)]
    bob = _submit(http, fresh_backend, "bob", tiny_spec(epochs=2))
    reasons: set[str] = set()
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:  # alice never has two jobs running (or sent to one)
        items = http.get("/api/v1/queue").json()["items"]
        busy = [e for e in items if e["job"]["owner"] == "alice"
                and e["state"] in {"running", "released"}]
        assert len(busy) <= 1, items
        reasons |= {e["reason"] for e in items if e["job"]["owner"] == "alice"
                    and e["state"] == "waiting"}
        if not items:
            break
        time.sleep(0.1)
    assert "alice: 1 of 1 running" in reasons

    jobs = {jid: _wait_done(http, jid) for jid in [*alice, bob]}
    assert all(j["status"] == "succeeded" for j in jobs.values()), jobs
    runs = sorted((_when(jobs[j]["started_at"]), _when(jobs[j]["finished_at"])) for j in alice)
    for (_, end), (start, _) in zip(runs, runs[1:], strict=False):
        assert start >= end  # one at a time, from the database's own record
    assert _when(jobs[bob]["started_at"]) < runs[1][0]  # bob before alice's second


def _metrics(db_url: str, jid: str) -> dict[tuple[str, int], float | None]:
    with session_scope(db_url) as s:
        rows = s.execute(select(Metric.key, Metric.step, Metric.value)
                         .where(Metric.job_id == uuid.UUID(jid))).all()
    # examples_per_s is wall-clock; everything else must replay exactly
    return {(k, step): v for k, step, v in rows if k != "examples_per_s"}


def _one_worker(backend, procs: Procs, **env: str) -> httpx.Client:  # noqa: ANN001
    url = procs.api(backend, **env)
    procs.worker(backend)
    http = httpx.Client(base_url=url, timeout=30, headers=backend.auth)
    wait_for(lambda: http.get("/api/v1/queue").json()["workers"], 90, "the worker")
    return http


def _preempted_then_resumed(http: httpx.Client, backend, spec: dict, why: str,  # noqa: ANN001
                            bob: int = 0, carol: int = 0) -> str:
    """Bob's job (``spec``, priority ``bob``) is under way when carol submits a 1-epoch job
    (priority ``carol``); bob's is preempted for hers (``why``), hers runs, then bob's
    resumes from its checkpoint and succeeds. Returns bob's job id."""
    low = _submit(http, backend, "bob", spec, priority=bob)
    wait_for(lambda: _job(http, low)["progress"]["step"] >= 30, 180, "bob's job under way")
    high = _submit(http, backend, "carol", tiny_spec(epochs=1), priority=carol)
    preempted = wait_for(lambda: (j := _job(http, low))["preemptions"] == 1 and j, 60,
                         f"bob's job preempted ({why})")
    assert preempted["status"] in {"queued", "running"}
    first = _wait_done(http, high)
    assert first["status"] == "succeeded", first["error"]
    done = _wait_done(http, low)
    assert done["status"] == "succeeded", done["error"]
    # a preemption is the scheduler's choice: it does not use up one of max_attempts, and
    # the history tells it apart from a lost worker or a cancel
    assert done["preemptions"] == 1 and done["attempts"] == 1
    assert [a["ended"] for a in done["attempts_history"]] == ["preempted", "succeeded"]
    assert done["progress"]["resume_step"] >= 30  # resumed from its checkpoint, not step 0
    assert _when(done["finished_at"]) > _when(first["finished_at"])
    return low


def test_a_preempted_job_resumes_exactly(fresh_backend, procs: Procs) -> None:  # noqa: ANN001, F811
    http = _one_worker(fresh_backend, procs)
    spec = long_spec(40)  # long enough to be preempted even on an idle core
    low = _preempted_then_resumed(http, fresh_backend, spec, "carol's priority is higher",
                                  bob=1, carol=9)

    # the same spec, uninterrupted, on the same worker
    ref = _submit(http, fresh_backend, "bob", spec)
    assert _wait_done(http, ref)["status"] == "succeeded"
    got, want = _metrics(fresh_backend.db_url, low), _metrics(fresh_backend.db_url, ref)
    assert got.keys() == want.keys() and len(want) > 100
    assert got == want


def test_fair_share_preemption_stops_a_users_job_for_one_with_no_usage(
        fresh_backend, procs: Procs) -> None:  # noqa: ANN001, F811
    # VAELAB_PREEMPT_FOR_FAIR_SHARE: equal priorities, so only fair share can preempt
    http = _one_worker(fresh_backend, procs, VAELAB_PREEMPT_FOR_FAIR_SHARE="true")
    _preempted_then_resumed(http, fresh_backend, long_spec(40),
                            "for carol, who has used nothing")
