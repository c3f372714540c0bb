"""Authentication and authorization over HTTP (TestClient, both backends).

The 401/403 matrix enumerates the app's routes, so a new ``/api/v1`` route cannot escape it:
one that ``EXPECT`` does not classify fails the test until someone says who may call it.
Callers: no token, a revoked token, an expired token, a member on their own resources, a
member on another's, an admin. Every case runs on fresh resources of alice (a queued job
cancelled at once so its event stream ends, a sweep, an uploaded dataset, a token).
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from service.db import users as users_db
from service.db.models import utcnow
from service.db.session import session_scope
from tests.conftest import tiny_spec

# (method, path template) -> who may call it: "any" = every valid token, "owner" = the
# owner of the resource or an admin, "self" = the user named by the resource or an admin,
# "admin" = admins only
EXPECT = {
    ("POST", "/api/v1/jobs"): "any",
    ("GET", "/api/v1/jobs"): "any",
    ("GET", "/api/v1/jobs/{job_id}"): "any",
    ("DELETE", "/api/v1/jobs/{job_id}"): "owner",
    ("POST", "/api/v1/jobs/{job_id}/cancel"): "owner",
    ("GET", "/api/v1/jobs/{job_id}/metrics"): "any",
    ("GET", "/api/v1/jobs/{job_id}/events"): "any",
    ("GET", "/api/v1/jobs/{job_id}/rate-distortion"): "any",
    ("GET", "/api/v1/jobs/{job_id}/artifacts"): "any",
    ("GET", "/api/v1/jobs/{job_id}/artifacts/{path:path}"): "any",
    ("GET", "/api/v1/jobs/{job_id}/checkpoints"): "any",
    ("GET", "/api/v1/jobs/{job_id}/checkpoints/{step}"): "any",
    ("GET", "/api/v1/jobs/{job_id}/samples"): "any",
    ("POST", "/api/v1/jobs/{job_id}/samples"): "any",
    ("POST", "/api/v1/sweeps"): "any",
    ("GET", "/api/v1/sweeps"): "any",
    ("GET", "/api/v1/sweeps/{sweep_id}"): "any",
    ("POST", "/api/v1/sweeps/{sweep_id}/cancel"): "owner",
    ("GET", "/api/v1/sweeps/{sweep_id}/rate-distortion"): "any",
    ("GET", "/api/v1/compare"): "any",
    ("GET", "/api/v1/schemes"): "any",
    ("GET", "/api/v1/storage"): "any",
    ("POST", "/api/v1/datasets"): "any",
    ("GET", "/api/v1/datasets"): "any",
    ("GET", "/api/v1/datasets/{dataset_id}"): "any",
    ("DELETE", "/api/v1/datasets/{dataset_id}"): "owner",
    ("POST", "/api/v1/users"): "admin",
    ("GET", "/api/v1/users"): "admin",
    ("GET", "/api/v1/users/me"): "any",
    ("PATCH", "/api/v1/users/{name}"): "admin",
    ("POST", "/api/v1/tokens"): "any",
    ("GET", "/api/v1/tokens"): "any",
    ("DELETE", "/api/v1/tokens/{token_id}"): "self",
    ("GET", "/api/v1/queue"): "any",
    ("POST", "/api/v1/jobs/{job_id}/preempt"): "admin",
    ("POST", "/api/v1/jobs/{job_id}/preemptible"): "admin",
}
OPEN = {"/healthz", "/readyz", "/metrics"}


def api_routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, path) the app serves under /api/v1, however routers are included."""
    found = set()

    def add(path: str, methods: set[str] | None) -> None:
        for m in methods or ():
            if m != "HEAD" and path.startswith("/api/v1"):
                found.add((m, path))

    for r in app.routes:
        if hasattr(r, "effective_route_contexts"):  # FastAPI's lazily included routers
            for c in r.effective_route_contexts():
                add(c.path, getattr(c, "methods", None)
                    or getattr(c.starlette_route, "methods", None))
        else:
            add(r.path, getattr(r, "methods", None))
    return found


def npz() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(buf, x_train=rng.integers(0, 256, (40, 8, 8), dtype=np.uint8),
             x_test=rng.integers(0, 256, (10, 8, 8), dtype=np.uint8))
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(backend):  # noqa: ANN001, ANN201
    from service.main import create_app

    with TestClient(create_app(backend.settings(reaper_enabled=False)),
                    headers=backend.auth) as c:
        c.backend = backend
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def world(client: TestClient) -> dict[str, str]:
    """Fresh resources of alice: path parameters to fill the route templates with."""
    alice = client.backend.auth_as("alice")
    job = client.post("/api/v1/jobs", headers=alice,
                      json={"spec": tiny_spec(), "resources": {"device": "cpu"}}).json()
    assert client.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 200  # admin
    sweep = client.post("/api/v1/sweeps", headers=alice, json={
        "base": tiny_spec(), "grid": {"train.seed": [0]}, "resources": {"device": "cpu"}}
    ).json()
    client.post(f"/api/v1/sweeps/{sweep['id']}/cancel")
    ds = client.post("/api/v1/datasets", params={"name": f"ds{uuid.uuid4().hex[:10]}"},
                     content=npz(), headers={**alice,
                                             "Content-Type": "application/octet-stream"})
    assert ds.status_code == 201, ds.text
    token = client.post("/api/v1/tokens", headers=alice, json={}).json()
    return {"job_id": job["id"], "sweep_id": sweep["id"], "dataset_id": ds.json()["id"],
            "token_id": token["id"], "name": "alice", "path:path": "samples/x.png",
            "step": "latest"}


def call(client: TestClient, method: str, template: str, params: dict[str, str],
         headers: dict[str, str]) -> Any:
    path = re.sub(r"\{([^}]+)\}", lambda m: params[m.group(1)], template)
    kwargs: dict[str, Any] = {}
    if (method, template) == ("POST", "/api/v1/jobs"):
        kwargs["json"] = {"spec": tiny_spec(), "resources": {"device": "cpu"}}
    elif (method, template) == ("POST", "/api/v1/sweeps"):
        kwargs["json"] = {"base": tiny_spec(), "grid": {"train.seed": [0]},
                          "resources": {"device": "cpu"}}
    elif (method, template) == ("POST", "/api/v1/datasets"):
        kwargs["params"] = {"name": f"ds{uuid.uuid4().hex[:10]}"}
        kwargs["content"] = npz()
        headers = {**headers, "Content-Type": "application/octet-stream"}
    elif (method, template) == ("POST", "/api/v1/users"):
        kwargs["json"] = {"name": f"u{uuid.uuid4().hex[:8]}"}
    elif (method, template) == ("PATCH", "/api/v1/users/{name}"):
        kwargs["json"] = {"weight": 1.0}
    elif (method, template) == ("POST", "/api/v1/jobs/{job_id}/preemptible"):
        kwargs["json"] = {"preemptible": True}
    elif method in ("POST", "PATCH"):
        kwargs["json"] = {}
    if template == "/api/v1/compare":
        kwargs["params"] = {"jobs": params["job_id"]}
    # the client's own admin header is replaced (an empty value is not sent)
    sent = {"Authorization": "", **headers}
    return client.request(method, path, headers=sent, **kwargs)


def test_every_api_route_is_classified_and_health_stays_open(client) -> None:  # noqa: ANN001
    routes = api_routes(client.app)
    unknown = routes - set(EXPECT)
    assert not unknown, f"classify these routes in EXPECT (who may call them): {unknown}"
    assert set(EXPECT) <= routes  # and the table names no route that is gone
    for path in OPEN:
        assert client.get(path, headers={"Authorization": ""}).status_code in (200, 503)


@pytest.mark.parametrize("case", ["none", "revoked", "expired", "garbage"])
def test_without_a_valid_token_every_api_route_is_401(client, case: str) -> None:  # noqa: ANN001
    params = world(client)
    with session_scope(client.backend.db_url) as s:
        if case == "revoked":
            row, secret = users_db.create_token(s, "alice")
            users_db.revoke_token(s, row)
        elif case == "expired":
            _, secret = users_db.create_token(s, "alice",
                                              expires_at=utcnow() - timedelta(seconds=1))
        else:
            secret = "vl_not-a-token"
    headers = {} if case == "none" else bearer(secret)
    for method, template in sorted(api_routes(client.app)):
        r = call(client, method, template, params, headers)
        assert r.status_code == 401, (case, method, template, r.status_code, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert isinstance(r.json()["detail"], str) and "token" in r.json()["detail"]


@pytest.mark.parametrize("who", ["owner", "other", "admin"])
def test_the_403_matrix(client, who: str) -> None:  # noqa: ANN001
    """alice on her own resources, bob on alice's, an admin on alice's."""
    params = world(client)
    headers = {"owner": client.backend.auth_as("alice"), "other": client.backend.auth_as("bob"),
               "admin": client.backend.auth}[who]
    # refusals first: a permitted delete would take the resource from the later calls
    order = sorted(EXPECT, key=lambda k: (k[0] == "DELETE", k))
    for method, template in order:
        rule = EXPECT[(method, template)]
        refused = (rule == "admin" and who != "admin") or \
            (rule in ("owner", "self") and who == "other")
        r = call(client, method, template, params, headers)
        if refused:
            assert r.status_code == 403, (who, method, template, r.status_code, r.text)
            detail = r.json()["detail"]
            assert isinstance(detail, str) and "only" in detail and "may" in detail, detail
        else:
            assert r.status_code not in (401, 403), (who, method, template, r.text)
            assert r.status_code < 500, (who, method, template, r.text)


def test_the_refusal_says_why(client) -> None:  # noqa: ANN001
    params = world(client)
    bob = client.backend.auth_as("bob")
    r = client.post(f"/api/v1/jobs/{params['job_id']}/cancel", headers=bob)
    assert r.status_code == 403
    assert r.json() == {"detail": "alice's job; only its owner or an admin may cancel it"}
    r = client.post("/api/v1/sweeps/" + params["sweep_id"] + "/cancel", headers=bob)
    assert r.json()["detail"] == "alice's sweep; only its owner or an admin may cancel it"
    r = client.patch("/api/v1/users/alice", headers=bob, json={"max_running": 9})
    assert r.status_code == 403 and "admin" in r.json()["detail"]


def test_tokens_are_stored_hashed(client) -> None:  # noqa: ANN001
    made = client.post("/api/v1/users", json={"name": f"h{uuid.uuid4().hex[:8]}"})
    assert made.status_code == 201, made.text
    secret = made.json()["token"]["token"]
    assert secret.startswith("vl_") and len(secret) > 40
    engine = create_engine(client.backend.db_url)
    try:
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM api_tokens"))]
    finally:
        engine.dispose()
    dump = repr(rows)
    assert secret not in dump and secret[3:] not in dump  # no secret anywhere in the table
    mine = [r for r in rows if str(r["id"]).replace("-", "") ==
            made.json()["token"]["id"].replace("-", "")]
    assert mine[0]["hash"] == hashlib.sha256(secret.encode()).hexdigest()
    listed = client.get("/api/v1/tokens").json()
    assert all("token" not in t for t in listed)  # listed without secrets


def test_a_revoked_token_gets_401_at_once(client) -> None:  # noqa: ANN001
    name = f"r{uuid.uuid4().hex[:8]}"
    token = client.post("/api/v1/users", json={"name": name}).json()["token"]
    me = client.get("/api/v1/users/me", headers=bearer(token["token"]))
    assert me.status_code == 200 and me.json()["name"] == name
    gone = client.delete(f"/api/v1/tokens/{token['id'][:8]}", headers=bearer(token["token"]))
    assert gone.status_code == 200 and gone.json()["revoked_at"]  # a member revokes their own
    r = client.get("/api/v1/users/me", headers=bearer(token["token"]))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_a_disabled_user_is_refused_and_limits_are_admin_set(client) -> None:  # noqa: ANN001
    name = f"d{uuid.uuid4().hex[:8]}"
    token = client.post("/api/v1/users", json={"name": name}).json()["token"]["token"]
    r = client.patch(f"/api/v1/users/{name}", json={"max_running": 2, "max_queued": 5,
                                                    "weight": 2.5, "max_priority": 3})
    assert r.status_code == 200
    assert {k: r.json()[k] for k in ("max_running", "max_queued", "weight", "max_priority")} \
        == {"max_running": 2, "max_queued": 5, "weight": 2.5, "max_priority": 3}
    cleared = client.patch(f"/api/v1/users/{name}", json={"max_running": None}).json()
    assert cleared["max_running"] is None and cleared["max_queued"] == 5
    with session_scope(client.backend.db_url) as s:  # what the scheduler reads
        u = users_db.get_user(s, name)
        assert (u.max_running, u.max_queued, u.weight, u.max_priority) == (None, 5, 2.5, 3)
    client.patch(f"/api/v1/users/{name}", json={"disabled": True})
    assert client.get("/api/v1/users/me", headers=bearer(token)).status_code == 401


def test_x_vaelab_user_is_refused_and_the_owner_comes_from_the_token(client) -> None:  # noqa: ANN001
    alice = client.backend.auth_as("alice")
    r = client.post("/api/v1/jobs", headers={**alice, "X-Vaelab-User": "bob"},
                    json={"spec": tiny_spec(), "resources": {"device": "cpu"}})
    assert r.status_code == 400 and "X-Vaelab-User" in r.json()["detail"]
    r = client.post("/api/v1/jobs", headers=alice,
                    json={"spec": tiny_spec(), "resources": {"device": "cpu"}})
    assert r.json()["owner"] == "alice"


def test_last_used_is_written_at_most_once_a_minute(client) -> None:  # noqa: ANN001
    with session_scope(client.backend.db_url) as s:
        row, secret = users_db.create_token(s, "alice")
    t0 = utcnow()
    with session_scope(client.backend.db_url) as s:
        first = users_db.authenticate(s, secret, now=t0).token.last_used_at
        users_db.authenticate(s, secret, now=t0 + timedelta(seconds=30))
    with session_scope(client.backend.db_url) as s:
        assert users_db.get_token(s, row.id).last_used_at.replace(tzinfo=None) == \
            first.replace(tzinfo=None)  # 30 s later: not written again
        users_db.authenticate(s, secret, now=t0 + timedelta(seconds=61))
    with session_scope(client.backend.db_url) as s:
        later = users_db.get_token(s, row.id).last_used_at.replace(tzinfo=None)
        assert later > first.replace(tzinfo=None)


def test_the_dashboard_signs_in_with_a_cookie(client) -> None:  # noqa: ANN001
    client.backend.auth_as("alice")
    token = client.backend.tokens["alice"]
    bare = {"Authorization": ""}
    page = client.get("/", headers=bare, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    r = client.get("/login", params={"token": token, "next": "/queue"}, headers=bare,
                   follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/queue"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    jar = {"vaelab_token": token}
    api = client.get("/api/v1/users/me", headers=bare, cookies=jar)
    assert api.status_code == 200 and api.json()["name"] == "alice"
    assert client.get("/", headers=bare, cookies=jar, follow_redirects=False).status_code == 200
    bad = client.get("/login", params={"token": "vl_nope"}, headers=bare)
    assert bad.status_code == 401 and "unknown" in bad.text
    away = client.get("/login", params={"token": token, "next": "//evil.example/"},
                      headers=bare, follow_redirects=False)
    assert away.headers["location"] == "/"  # no open redirect


def test_read_scope_owner_hides_others_resources(backend) -> None:  # noqa: ANN001
    from service.main import create_app

    app = create_app(backend.settings(reaper_enabled=False, read_scope="owner"))
    with TestClient(app, headers=backend.auth) as admin:
        alice, bob = backend.auth_as("alice"), backend.auth_as("bob")
        jid = admin.post("/api/v1/jobs", headers=alice,
                         json={"spec": tiny_spec(), "resources": {"device": "cpu"}}).json()["id"]
        assert admin.get(f"/api/v1/jobs/{jid}", headers=bob).status_code == 404
        assert admin.get(f"/api/v1/jobs/{jid}/metrics", headers=bob).status_code == 404
        assert admin.get("/api/v1/compare", params={"jobs": jid}, headers=bob).status_code \
            == 404
        listed = admin.get("/api/v1/jobs", params={"owner": "alice"}, headers=bob).json()
        assert all(j["owner"] == "bob" for j in listed["items"])
        owners = admin.get("/api/v1/storage", headers=bob).json()["owners"]
        assert all(o["owner"] == "bob" for o in owners)
        assert admin.get(f"/api/v1/jobs/{jid}", headers=alice).status_code == 200
        assert admin.get(f"/api/v1/jobs/{jid}").status_code == 200  # an admin sees all
