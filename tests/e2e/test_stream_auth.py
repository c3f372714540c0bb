"""An open event stream ends once its token stops being valid, against a real `vaelab api`
process (both backends): four streams follow one waiting job; one token is revoked, one
expires, one user is disabled, and each of those streams ends with `event: error` (401, the
reason) within a bound, while the fourth (a valid token) stays open. `vaelab`'s client
(`Client.events`, behind `vaelab watch`) raises the 401 instead of reconnecting. Under
`VAELAB_READ_SCOPE=owner` an admin made a member loses another's job's stream (404, as a new
request gets) and keeps the stream of their own job."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import httpx
import pytest

from service.client import ApiError, Client, read_events
from service.db import users as users_db
from service.db.models import utcnow
from service.db.session import session_scope
from tests.conftest import Procs, tiny_spec, wait_for
from tests.lab import fresh_backend  # noqa: F401

CHECK_S = 2.0  # VAELAB_STREAM_TOKEN_CHECK_S, the default
# the check interval, a poll (0.5 s) and a loaded 2-core machine's scheduling
BOUND_S = CHECK_S + 3.0


def _token(db_url: str, name: str, expires_in_s: float | None = None) -> tuple[str, str]:
    """(token id, secret) of a new token of member ``name`` (created if missing)."""
    with session_scope(db_url) as s:
        if users_db.get_user(s, name) is None:
            users_db.create_user(s, name)
        expires = utcnow() + timedelta(seconds=expires_in_s) if expires_in_s else None
        row, secret = users_db.create_token(s, name, expires_at=expires)
        return str(row.id), secret


class Stream(threading.Thread):
    """Reads a job's event stream with ``secret`` until the server ends it."""

    def __init__(self, url: str, job_id: str, secret: str):
        super().__init__(daemon=True)
        self.url, self.job_id, self.secret = url, job_id, secret
        self.events: list[tuple[str, dict]] = []
        self.ended_at: float | None = None

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.secret}"}
        with httpx.stream("GET", f"{self.url}/api/v1/jobs/{self.job_id}/events",
                          headers=headers, timeout=httpx.Timeout(10.0, read=60.0)) as r:
            assert r.status_code == 200
            for event, data, _ in read_events(r):
                self.events.append((event, data))
        self.ended_at = time.monotonic()


def test_an_open_stream_ends_when_its_token_is_revoked_expires_or_its_user_is_disabled(
        fresh_backend, procs: Procs) -> None:  # noqa: ANN001, F811
    b = fresh_backend
    url = procs.api(b)  # no worker: the job waits, so its stream stays open
    admin = httpx.Client(base_url=url, headers=b.auth, timeout=30)
    jid = admin.post("/api/v1/jobs", json={"spec": tiny_spec()}).json()["id"]
    revoked_id, revoked = _token(b.db_url, "alice")
    _, expiring = _token(b.db_url, "bob", expires_in_s=6.0)
    _, disabled = _token(b.db_url, "carol")
    _, kept = _token(b.db_url, "dave")
    _, watched = _token(b.db_url, "erin")
    streams = {name: Stream(url, jid, secret) for name, secret in
               [("revoked", revoked), ("expired", expiring), ("disabled", disabled),
                ("kept", kept)]}
    for s in streams.values():
        s.start()
    wait_for(lambda: all(s.events for s in streams.values()), 30, "every stream's status")
    assert all(s.events[0][0] == "status" for s in streams.values())

    raised: list[tuple[BaseException, float]] = []

    def watch() -> None:  # what `vaelab watch` does with the stream
        try:
            for _ in Client(url, watched).events(jid):
                pass
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            raised.append((exc, time.monotonic()))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(1.0)  # the watcher is connected

    changed = {}
    assert admin.delete(f"/api/v1/tokens/{revoked_id}").status_code == 200
    changed["revoked"] = time.monotonic()
    assert admin.patch("/api/v1/users/carol", json={"disabled": True}).status_code == 200
    changed["disabled"] = time.monotonic()
    with session_scope(b.db_url) as s:  # erin's token: revoked in the database itself
        for t in users_db.list_tokens(s, "erin"):
            users_db.revoke_token(s, t)
    changed["watched"] = time.monotonic()
    with session_scope(b.db_url) as s:
        expires_at = users_db.list_tokens(s, "bob")[0].expires_at
    changed["expired"] = time.monotonic() + max(
        0.0, (users_db._aware(expires_at) - utcnow()).total_seconds())

    for name in ("revoked", "disabled", "expired"):
        s = streams[name]
        s.join(timeout=BOUND_S + 10)
        assert s.ended_at is not None, f"the {name} stream is still open"
        took = s.ended_at - changed[name]
        print(f"{b.name}: {name} stream ended {took:.2f} s after its token stopped")
        assert took <= BOUND_S, (name, took)
        event, data = s.events[-1]
        assert event == "error" and data["status"] == 401
    assert "revoked" in streams["revoked"].events[-1][1]["detail"]
    assert "expired" in streams["expired"].events[-1][1]["detail"]
    assert streams["disabled"].events[-1][1]["detail"].startswith("user carol is disabled")

    watcher.join(timeout=BOUND_S + 10)
    assert not watcher.is_alive(), "the client kept the stream or kept reconnecting"
    assert len(raised) == 1 and isinstance(raised[0][0], ApiError), raised
    exc, at = raised[0]
    print(f"{b.name}: the client raised {at - changed['watched']:.2f} s after")
    assert exc.status == 401 and "revoked" in str(exc)
    assert at - changed["watched"] <= BOUND_S

    assert streams["kept"].is_alive() and streams["kept"].ended_at is None
    r = httpx.get(f"{url}/api/v1/jobs/{jid}", headers={"Authorization": f"Bearer {revoked}"})
    assert r.status_code == 401
    admin.post(f"/api/v1/jobs/{jid}/cancel")  # the job ends: the kept stream ends with it
    streams["kept"].join(timeout=30)
    assert streams["kept"].events[-1][0] == "end"


def test_an_admin_made_a_member_loses_the_stream_of_anothers_job_under_owner_scope(
        fresh_backend, procs: Procs) -> None:  # noqa: ANN001, F811
    b = fresh_backend
    url = procs.api(b, VAELAB_READ_SCOPE="owner")  # no worker: both jobs wait
    admin = httpx.Client(base_url=url, headers=b.auth, timeout=30)
    theirs = admin.post("/api/v1/jobs", json={"spec": tiny_spec()}).json()["id"]
    assert admin.post("/api/v1/users", json={"name": "frank", "role": "admin"}).status_code == 201
    _, secret = _token(b.db_url, "frank")
    frank = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    own = frank.post("/api/v1/jobs", json={"spec": tiny_spec()}).json()["id"]
    streams = {"theirs": Stream(url, theirs, secret), "own": Stream(url, own, secret)}
    for s in streams.values():
        s.start()
    wait_for(lambda: all(s.events for s in streams.values()), 30, "both streams' status")

    assert admin.patch("/api/v1/users/frank", json={"role": "member"}).status_code == 200
    changed = time.monotonic()
    streams["theirs"].join(timeout=BOUND_S + 10)
    assert streams["theirs"].ended_at is not None, "the stream of another's job is still open"
    took = streams["theirs"].ended_at - changed
    print(f"{b.name}: the demoted admin's stream of another's job ended {took:.2f} s after")
    assert took <= BOUND_S
    event, data = streams["theirs"].events[-1]
    assert event == "error" and data["status"] == 404, (event, data)
    assert frank.get(f"/api/v1/jobs/{theirs}").status_code == 404  # as a new request
    assert streams["own"].is_alive() and streams["own"].ended_at is None
    frank.post(f"/api/v1/jobs/{own}/cancel")
    streams["own"].join(timeout=30)
    assert streams["own"].events[-1][0] == "end"


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_bad_stream_token_check_interval_is_refused_naming_it(value: str) -> None:
    from pydantic import ValidationError

    from service.core.config import Settings

    with pytest.raises(ValidationError, match="stream_token_check_s"):
        Settings(stream_token_check_s=value)
