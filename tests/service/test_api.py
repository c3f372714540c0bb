"""The HTTP API in-process (FastAPI TestClient) on a real database and broker, both backends.

No worker consumes here: jobs stay queued unless a test moves them along through the same
functions a worker uses (the SQL sink, claim/finish)."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from service.db import jobs as jobs_db
from service.db.models import Artifact, Job
from service.db.session import get_engine, session_scope
from tests.conftest import tiny_spec
from worker.sink import SqlMetricSink


@pytest.fixture(scope="module")
def client(backend):  # noqa: ANN001, ANN201
    from service.main import create_app

    app = create_app(backend.settings(reaper_enabled=False))
    with TestClient(app, headers=backend.auth) as c:
        c.backend = backend
        yield c


def submit(client, owner="alice", **body):  # noqa: ANN001, ANN003, ANN201
    payload = {"spec": tiny_spec(), **body}
    return client.post("/api/v1/jobs", json=payload, headers=client.backend.auth_as(owner))


def test_submit_returns_201_with_the_queued_job(client) -> None:  # noqa: ANN001
    r = submit(client, priority=7, tags=["demo", "beta"], resources={"device": "cpu"})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "queued"
    assert job["owner"] == "alice"
    assert job["priority"] == 7
    assert job["tags"] == ["beta", "demo"]
    assert job["queue"].startswith("cpu")
    assert job["name"] == "tiny"
    assert job["spec"]["model"]["latent_dim"] == 4
    assert job["spec"]["kl"]["schedule"]["kind"] == "constant"  # defaults resolved
    assert len(job["spec_hash"]) == 64
    assert job["progress"] == {"step": 0, "total_steps": None, "fraction": None,
                               "resume_step": None, "eta_seconds": None,
                               "eta_includes_evals": None}
    again = client.get(f"/api/v1/jobs/{job['id']}").json()
    assert again["spec_hash"] == job["spec_hash"]


def test_the_owner_is_the_token_s_user_and_cuda_goes_to_the_gpu_queue(client) -> None:  # noqa: ANN001
    r = client.post("/api/v1/jobs", json={"spec": tiny_spec(), "resources": {"device": "cuda"}})
    assert r.status_code == 201
    assert r.json()["owner"] == "admin"  # the fixtures' token
    assert r.json()["queue"].startswith("gpu")


def test_invalid_spec_names_every_bad_field(client) -> None:  # noqa: ANN001
    spec = tiny_spec()
    spec["kl"] = {"schedule": {"kind": "constant", "beta": -1}}
    spec["model"]["latent_dim"] = 0
    spec["optim"]["lr"] = "fast"
    spec["bogus"] = 1
    r = client.post("/api/v1/jobs", json={"spec": spec})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["detail"]}
    assert {"spec.kl.schedule.beta", "spec.model.latent_dim", "spec.optim.lr",
            "spec.bogus"} <= fields
    assert all(e["message"] for e in r.json()["detail"])


def test_bad_envelope_and_bad_spec_are_reported_together(client) -> None:  # noqa: ANN001
    spec = tiny_spec()
    spec["model"]["latent_dim"] = -3
    r = client.post("/api/v1/jobs", json={"spec": spec, "priority": 42,
                                          "resources": {"device": "tpu"}})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["detail"]}
    assert {"priority", "resources.device", "spec.model.latent_dim"} <= fields


def test_unknown_scheme_is_422(client) -> None:  # noqa: ANN001
    spec = tiny_spec()
    spec["kl"] = {"schedule": {"kind": "nope"}}
    r = client.post("/api/v1/jobs", json={"spec": spec})
    assert r.status_code == 422
    assert any(e["field"].startswith("spec.kl.schedule") for e in r.json()["detail"])


def test_list_filters_and_paginates_with_a_total(client) -> None:  # noqa: ANN001
    owner = f"lister-{uuid.uuid4().hex[:6]}"
    ids = [submit(client, owner=owner, tags=["grid", f"lr{i}"]).json()["id"] for i in range(5)]
    page = client.get("/api/v1/jobs", params={"owner": owner, "limit": 2}).json()
    assert page["total"] == 5
    assert len(page["items"]) == 2
    assert [j["id"] for j in page["items"]] == ids[::-1][:2]  # newest first
    page2 = client.get("/api/v1/jobs", params={"owner": owner, "limit": 2, "offset": 4}).json()
    assert [j["id"] for j in page2["items"]] == [ids[0]]
    tagged = client.get("/api/v1/jobs", params={"owner": owner, "tag": "lr3"}).json()
    assert [j["id"] for j in tagged["items"]] == [ids[3]]
    client.post(f"/api/v1/jobs/{ids[1]}/cancel")
    cancelled = client.get("/api/v1/jobs", params={"owner": owner, "status": "cancelled"}).json()
    assert [j["id"] for j in cancelled["items"]] == [ids[1]]
    assert client.get("/api/v1/jobs", params={"status": "weird"}).status_code == 422


def test_cancel_queued_job_is_immediate_and_finished_job_is_409(client) -> None:  # noqa: ANN001
    job = submit(client).json()
    r = client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"
    assert r.json()["finished_at"] is not None
    r = client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 409


def test_cancel_running_job_sets_the_flag(client) -> None:  # noqa: ANN001
    job = submit(client).json()
    jid = uuid.UUID(job["id"])
    with session_scope(client.backend.db_url) as s:
        assert jobs_db.claim(s, jid, "lease-1", "test", stale_after_s=60)
    r = client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200
    assert r.json()["status"] == "running"
    assert r.json()["cancel_requested"] is True


def test_unknown_job_is_404(client) -> None:  # noqa: ANN001
    missing = uuid.uuid4()
    assert client.get(f"/api/v1/jobs/{missing}").status_code == 404
    assert client.post(f"/api/v1/jobs/{missing}/cancel").status_code == 404
    assert client.get(f"/api/v1/jobs/{missing}/metrics").status_code == 404
    assert client.get("/api/v1/jobs/not-a-uuid").status_code == 422


def _running_job_with_metrics(client, n: int, spike_at: int) -> uuid.UUID:  # noqa: ANN001
    job = submit(client).json()
    jid = uuid.UUID(job["id"])
    url = client.backend.db_url
    with session_scope(url) as s:
        assert jobs_db.claim(s, jid, "lease", "test", stale_after_s=60)
    sink = SqlMetricSink(get_engine(url), jid, "lease", batch_points=1000, batch_seconds=60)
    sink.start(total_steps=n, start_step=0)
    for step in range(1, n + 1):
        loss = 100.0 if step == spike_at else 1.0 + 0.001 * (step % 7)
        sink.log(step, {"loss": loss, "rate": float(step)})
    sink.flush()
    return jid


def test_metrics_are_downsampled_and_keep_spikes(client) -> None:  # noqa: ANN001
    jid = _running_job_with_metrics(client, n=5000, spike_at=3217)
    r = client.get(f"/api/v1/jobs/{jid}/metrics", params={"keys": "loss,rate",
                                                          "max_points": 100})
    assert r.status_code == 200
    series = {s["key"]: s for s in r.json()["series"]}
    loss = series["loss"]
    assert loss["points_in_range"] == 5000
    assert loss["downsampled"] is True
    assert 50 <= len(loss["steps"]) <= 100
    assert loss["steps"] == sorted(loss["steps"])
    assert 100.0 in loss["values"]  # the one-step spike survives
    assert loss["steps"][loss["values"].index(100.0)] == 3217
    rate = series["rate"]
    assert rate["steps"][0] == 1 and rate["steps"][-1] == 5000  # both ends kept
    window = client.get(f"/api/v1/jobs/{jid}/metrics",
                        params={"keys": "rate", "start_step": 10, "end_step": 19}).json()
    assert window["series"][0]["steps"] == list(range(10, 20))
    assert window["series"][0]["values"] == [float(s) for s in range(10, 20)]
    default = client.get(f"/api/v1/jobs/{jid}/metrics").json()
    assert {s["key"] for s in default["series"]} == {"loss", "rate"}
    assert all(len(s["steps"]) <= 500 for s in default["series"])


def test_job_detail_has_progress_eta_and_latest_metrics(client) -> None:  # noqa: ANN001
    jid = _running_job_with_metrics(client, n=200, spike_at=-1)
    with session_scope(client.backend.db_url) as s:
        s.get(Job, jid).total_steps = 400
    job = client.get(f"/api/v1/jobs/{jid}").json()
    assert job["status"] == "running"
    assert job["progress"]["step"] == 200
    assert job["progress"]["total_steps"] == 400
    assert job["progress"]["fraction"] == pytest.approx(0.5)
    assert job["progress"]["eta_seconds"] is not None and job["progress"]["eta_seconds"] >= 0
    assert job["latest_metrics"]["rate"] == {"step": 200, "value": 200.0}


def _read_events(client, jid, last_event_id=None):  # noqa: ANN001, ANN202
    from service.client import read_events

    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    with client.stream("GET", f"/api/v1/jobs/{jid}/events", headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        return list(read_events(r))


def test_events_stream_metrics_and_resume_from_last_event_id(client) -> None:  # noqa: ANN001
    job = submit(client).json()
    jid = uuid.UUID(job["id"])
    url = client.backend.db_url
    with session_scope(url) as s:
        assert jobs_db.claim(s, jid, "L", "test", stale_after_s=60)
    sink = SqlMetricSink(get_engine(url), jid, "L", batch_points=10, batch_seconds=60)
    for step in range(1, 31):  # 3 batches of 10 points
        sink.log(step, {"loss": float(step)})
    with session_scope(url) as s:
        assert jobs_db.finish(s, jid, "L", "succeeded")
    events = _read_events(client, jid)
    kinds = [e[0] for e in events]
    assert kinds[0] == "status" and kinds[-1] == "end"
    batches = [e for e in events if e[0] == "metrics"]
    assert len(batches) == 3
    steps = [p["step"] for _k, data, _id in batches for p in data["points"]]
    assert steps == list(range(1, 31))
    # resume after the first batch: only the later points, none twice
    resumed = _read_events(client, jid, last_event_id=batches[0][2])
    steps2 = [p["step"] for k, data, _id in resumed if k == "metrics" for p in data["points"]]
    assert steps2 == list(range(11, 31))
    assert resumed[0][1]["status"] == "succeeded"


def test_replayed_points_are_ignored_and_artifacts_recorded(client, tmp_path) -> None:  # noqa: ANN001
    from service.db.artifacts import latest_checkpoint
    from worker.artifacts import SqlArtifacts

    jid = _running_job_with_metrics(client, n=50, spike_at=-1)
    url = client.backend.db_url
    sink = SqlMetricSink(get_engine(url), jid, "lease", batch_points=1000, batch_seconds=60)
    for step in range(30, 61):  # a resumed run re-sends 30..50, then goes on
        sink.log(step, {"loss": -1.0})
    sink.flush()
    r = client.get(f"/api/v1/jobs/{jid}/metrics", params={"keys": "loss", "max_points": 1000})
    s = r.json()["series"][0]
    assert s["steps"] == list(range(1, 61))
    assert s["values"][28] != -1.0 and s["values"][29] != -1.0  # step 30 kept the first value
    assert s["values"][59] == -1.0
    store = SqlArtifacts(get_engine(url), tmp_path, jid)
    p1 = store.write("checkpoint", 10, "step_00000010.safetensors", b"one")
    p2 = store.write("checkpoint", 20, "step_00000020.safetensors", b"two")
    store.write("checkpoint", 20, "step_00000020.safetensors", b"two again")
    assert latest_checkpoint(get_engine(url), tmp_path, jid) == p2
    with session_scope(url) as ses:
        rows = ses.query(Artifact).filter_by(job_id=jid).order_by(Artifact.step).all()
    assert [(a.step, a.bytes) for a in rows] == [(10, 3), (20, 9)]
    assert rows[0].path == f"{jid}/checkpoints/step_00000010.safetensors"
    import hashlib

    assert rows[0].sha256 == hashlib.sha256(b"one").hexdigest()
    assert p1.endswith("step_00000010.safetensors")


def test_schemes_health_and_docs(client) -> None:  # noqa: ANN001
    r = client.get("/api/v1/schemes")
    assert r.status_code == 200
    schema = r.json()["spec_schema"]
    assert "kl" in schema["properties"] and "dataset" in schema["properties"]
    catalogue = r.json()["catalogue"]  # the engine's registry-generated catalogue
    assert catalogue is not None and "schedules" in catalogue
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/jobs", "/api/v1/jobs/{job_id}", "/api/v1/jobs/{job_id}/cancel",
            "/api/v1/jobs/{job_id}/metrics", "/api/v1/jobs/{job_id}/events",
            "/api/v1/schemes", "/healthz", "/readyz"} <= set(paths)


def _npz_spec(path: str) -> dict:
    spec = tiny_spec()
    spec["dataset"] = {"name": "npz", "path": path}
    return spec


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.npz", "a/../../outside.npz",
                                  "/tmp/elsewhere/x.npz"])
def test_npz_path_outside_the_dataset_root_is_422(client, path) -> None:  # noqa: ANN001
    r = client.post("/api/v1/jobs", json={"spec": _npz_spec(path)})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["detail"]] == ["spec.dataset.path"]


def test_npz_path_inside_the_dataset_root_is_stored_resolved(client) -> None:  # noqa: ANN001
    root = client.backend.settings().datasets
    for given in ("sets/d.npz", str(root / "sets" / "d.npz")):
        r = client.post("/api/v1/jobs", json={"spec": _npz_spec(given)})
        assert r.status_code == 201, r.text
        assert r.json()["spec"]["dataset"]["path"] == str(root / "sets" / "d.npz")


def test_read_events_skips_the_retry_hint_and_keeps_the_last_id() -> None:
    """httpx-sse decodes; events without data (the retry hint) are not yielded, and an event
    without its own id carries the stream's last one (the resume point)."""
    import httpx

    from service.client import read_events

    body = (b"retry: 2000\n\n: keep-alive\n\nevent: status\ndata: {\"a\": 1}\n\n"
            b"id: 7.5\nevent: metrics\ndata: {\"points\": []}\n\n"
            b"event: end\ndata: {\"status\": \"succeeded\"}\n\n")
    transport = httpx.MockTransport(lambda req: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=body))
    with httpx.Client(transport=transport) as http, http.stream("GET", "http://t/e") as r:
        events = list(read_events(r))
    assert events == [("status", {"a": 1}, None), ("metrics", {"points": []}, "7.5"),
                      ("end", {"status": "succeeded"}, "7.5")]
