"""A unique prefix of six or more hex digits stands for a job's or a sweep's id (both
backends): whole ids, prefixes with and without hyphens, unknown (404), ambiguous (409) and
malformed (422, naming the path parameter)."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from service.db.models import Job
from service.db.session import session_scope
from tests.conftest import tiny_spec


@pytest.fixture(scope="module")
def client(backend):  # noqa: ANN001, ANN201
    from service.main import create_app

    with TestClient(create_app(backend.settings(reaper_enabled=False)),
                    headers=backend.auth) as c:
        c.backend = backend
        yield c


def _job_with_id(url: str, jid: uuid.UUID) -> None:
    with session_scope(url) as s:
        s.add(Job(id=jid, status="succeeded", name="p", spec=tiny_spec(), spec_hash="0" * 64,
                  owner="t", priority=0, device="cpu", queue="cpu", attempts=1, step=0,
                  cancel_requested=False))


def test_job_prefixes(client) -> None:  # noqa: ANN001
    a = uuid.UUID("abc12300-0000-4000-8000-000000000001")
    b = uuid.UUID("abc12300-0000-4000-8000-000000000002")
    c = uuid.UUID("abc124ff-ffff-4fff-bfff-ffffffffffff")
    for jid in (a, b, c):
        _job_with_id(client.backend.db_url, jid)
    for text in (str(a), "abc124", "ABC124FF", "abc124ff-ffff-4", str(c)):
        r = client.get(f"/api/v1/jobs/{text}")
        assert r.status_code == 200 and r.json()["id"] == str(c if "124" in text.lower()
                                                               else a), text
    r = client.get("/api/v1/jobs/abc123")
    assert r.status_code == 409 and "ambiguous" in r.json()["detail"]
    assert str(a) in r.json()["detail"] and str(b) in r.json()["detail"]
    # a hyphenated prefix one digit short of the whole id is still ambiguous
    assert client.get("/api/v1/jobs/abc12300-0000-4000-8000-00000000000").status_code == 409
    r = client.get("/api/v1/jobs/abc125")
    assert r.status_code == 404 and r.json()["detail"] == "no job abc125"
    for bad in ("abc12", "xyz12345"):
        r = client.get(f"/api/v1/jobs/{bad}")
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "job_id", bad
    # every route that names a job resolves the prefix the same way
    assert client.get("/api/v1/jobs/abc124/metrics").status_code == 200
    assert client.post("/api/v1/jobs/abc123/cancel").status_code == 409


def test_sweep_prefixes(client) -> None:  # noqa: ANN001
    r = client.post("/api/v1/sweeps", json={"base": tiny_spec(), "grid": {"train.seed": [0]},
                                            "resources": {"device": "cpu"}})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    got = client.get(f"/api/v1/sweeps/{sid[:6]}")
    assert got.status_code == 200 and got.json()["id"] == sid
    assert client.get(f"/api/v1/sweeps/{sid[:6]}/rate-distortion").status_code == 200
    assert client.get("/api/v1/sweeps/12345").status_code == 422
    # cancelled, so a worker started later on these queues does not train its job
    assert client.post(f"/api/v1/sweeps/{sid[:8]}/cancel").status_code == 200
