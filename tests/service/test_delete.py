"""DELETE /api/v1/jobs/{id} and the storage figures (both backends): a finished job's rows,
metrics, evaluations and files go; a queued or running job is refused with 409."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.db import jobs as jobs_db
from service.db.models import Artifact, Evaluation, Job, JobTag, Metric, MetricRollup
from service.db.session import get_engine, session_scope
from tests.conftest import tiny_spec
from worker.artifacts import SqlArtifacts
from worker.sink import SqlMetricSink


@pytest.fixture(scope="module")
def client(backend):  # noqa: ANN001, ANN201
    from service.main import create_app

    with TestClient(create_app(backend.settings(reaper_enabled=False)),
                    headers=backend.auth) as c:
        c.backend = backend
        c.settings = backend.settings()
        yield c


def _submit(client, owner: str = "dora") -> str:  # noqa: ANN001
    r = client.post("/api/v1/jobs", json={"spec": tiny_spec(), "tags": ["del"]},
                    headers=client.backend.auth_as(owner))
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _finish_with_files(client, jid: str) -> None:  # noqa: ANN001
    url, lease, job_id = client.backend.db_url, str(uuid.uuid4()), uuid.UUID(jid)
    with session_scope(url) as s:
        assert jobs_db.claim(s, job_id, lease, "test", 60)
    engine = get_engine(url)
    sink = SqlMetricSink(engine, job_id, lease)
    for step in range(1, 40):
        sink.log(step, {"loss": 1.0 / step})
    sink.log_eval(39, {"elbo": -3.0, "rate": 1.0, "distortion": 2.0})
    sink.flush()
    store = SqlArtifacts(engine, client.settings.artifacts, job_id)
    store.write("checkpoint", 39, "step_00000039.safetensors", b"x" * 1000)
    store.write("samples", 39, "samples_00000039.png", b"y" * 500)
    with session_scope(url) as s:
        assert jobs_db.finish(s, job_id, lease, "succeeded", step=39)


def _rows(url: str, jid: str) -> dict[str, int]:
    job_id = uuid.UUID(jid)
    with session_scope(url) as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)
                                          .where(t.job_id == job_id))
                for t in (Metric, MetricRollup, Artifact, Evaluation, JobTag)} | {
            "jobs": s.scalar(select(func.count()).select_from(Job).where(Job.id == job_id))}


def test_delete_removes_rows_metrics_and_files(client) -> None:  # noqa: ANN001
    jid = _submit(client)
    keep = _submit(client)
    _finish_with_files(client, jid)
    folder = client.settings.artifacts / jid
    assert folder.is_dir()
    assert client.get(f"/api/v1/jobs/{jid}").json()["storage_bytes"] == 1500
    owners = {o["owner"]: o for o in client.get("/api/v1/storage").json()["owners"]}
    assert owners["dora"]["bytes"] >= 1500 and owners["dora"]["jobs"] >= 1
    before = _rows(client.backend.db_url, jid)
    assert all(before[k] > 0 for k in ("metrics", "artifacts", "evaluations", "jobs")), before

    r = client.delete(f"/api/v1/jobs/{jid[:8]}")
    assert r.status_code == 204, r.text
    assert set(_rows(client.backend.db_url, jid).values()) == {0}
    assert not folder.exists()
    assert client.get(f"/api/v1/jobs/{jid}").status_code == 404
    assert client.delete(f"/api/v1/jobs/{jid}").status_code == 404
    assert _rows(client.backend.db_url, keep)["jobs"] == 1  # nothing else touched
    # cancelled, so a worker started later on these queues does not train it
    assert client.post(f"/api/v1/jobs/{keep}/cancel").status_code == 200


def test_delete_is_refused_while_queued_or_running(client) -> None:  # noqa: ANN001
    jid = _submit(client)
    r = client.delete(f"/api/v1/jobs/{jid}")
    assert r.status_code == 409 and "queued" in r.json()["detail"]
    with session_scope(client.backend.db_url) as s:
        assert jobs_db.claim(s, uuid.UUID(jid), "lease", "test", 60)
    r = client.delete(f"/api/v1/jobs/{jid}")
    assert r.status_code == 409 and "running" in r.json()["detail"]
    assert client.get(f"/api/v1/jobs/{jid}").json()["status"] == "running"
    with session_scope(client.backend.db_url) as s:  # no running job left for other tests
        assert jobs_db.finish(s, uuid.UUID(jid), "lease", "cancelled")
    assert client.delete(f"/api/v1/jobs/{jid}").status_code == 204
