"""Sweeps over the API (TestClient, both backends, a real database and broker; no worker):
create from a grid or overrides, 422 naming bad paths, list/get/cancel, the jobs filter, the
frontier in JSON/CSV/PNG/SVG and the compare endpoint. Jobs are finished here through the
worker's own claim/finish functions with known summaries."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from fastapi.testclient import TestClient

from service.db import jobs as jobs_db
from service.db.session import get_engine, session_scope
from tests.conftest import tiny_spec
from worker.sink import SqlMetricSink


@pytest.fixture(scope="module")
def client(backend):  # noqa: ANN001, ANN201
    from service.main import create_app

    with TestClient(create_app(backend.settings(reaper_enabled=False)),
                    headers=backend.auth) as c:
        c.backend = backend
        yield c


def create(client, **body):  # noqa: ANN001, ANN003, ANN201
    payload = {"base": tiny_spec(), "resources": {"device": "cpu"}, **body}
    return client.post("/api/v1/sweeps", json=payload, headers=client.backend.auth_as("sam"))


def finish(client, jid: str, summary: dict, points: int = 3) -> None:  # noqa: ANN001
    """Run the job's life as a worker would: claim, log metrics, evaluate, succeed."""
    url = client.backend.db_url
    lease = str(uuid.uuid4())
    with session_scope(url) as s:
        assert jobs_db.claim(s, uuid.UUID(jid), lease, "test", 60)
    sink = SqlMetricSink(get_engine(url), uuid.UUID(jid), lease)
    for i in range(1, points + 1):
        sink.log(i * 10, {"loss": summary["rate"] + summary["distortion"] + 10 / i,
                          "rate": summary["rate"]})
    sink.log_eval(points * 10, summary)
    sink.flush()
    with session_scope(url) as s:
        assert jobs_db.finish(s, uuid.UUID(jid), lease, "succeeded", summary=summary,
                             step=points * 10)


def test_grid_sweep_creates_one_tagged_job_per_point(client) -> None:  # noqa: ANN001
    r = create(client, name="betas", grid={"kl.schedule.beta": [0.5, 2.0],
                                           "train.seed": [0, 1]}, tags=["t1"], priority=3)
    assert r.status_code == 201, r.text
    sw = r.json()
    assert sw["name"] == "betas" and sw["owner"] == "sam" and sw["status"] == "queued"
    assert sw["varied"] == ["kl.schedule.beta", "train.seed"]
    assert sw["progress"] == {"total": 4, "finished": 0, "fraction": 0.0, "counts": {
        "queued": 4, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0}}
    assert [j["index"] for j in sw["jobs"]] == [0, 1, 2, 3]
    assert [j["params"] for j in sw["jobs"]][1] == {"kl.schedule.beta": 0.5, "train.seed": 1}
    for j in sw["jobs"]:
        job = client.get(f"/api/v1/jobs/{j['job']['id']}").json()
        assert job["sweep_id"] == sw["id"] and job["priority"] == 3
        assert set(job["tags"]) == {"t1", f"sweep:{sw['id']}"}
        assert job["spec"]["kl"]["schedule"]["beta"] == j["params"]["kl.schedule.beta"]
        assert job["spec"]["train"]["seed"] == j["params"]["train.seed"]
    listed = client.get("/api/v1/jobs", params={"sweep": sw["id"]}).json()
    assert listed["total"] == 4
    assert client.get(f"/api/v1/sweeps/{sw['id']}").json()["jobs"] == sw["jobs"]
    page = client.get("/api/v1/sweeps", params={"owner": "sam"}).json()
    assert sw["id"] in [s["id"] for s in page["items"]]


def test_overrides_sweep(client) -> None:  # noqa: ANN001
    r = create(client, overrides=[{"kl.schedule.beta": 0.25},
                                  {"kl.schedule": {"kind": "capacity", "c_max": 5}}])
    assert r.status_code == 201, r.text
    jobs = r.json()["jobs"]
    assert len(jobs) == 2 and r.json()["varied"] == ["kl.schedule.beta", "kl.schedule"]
    spec = client.get(f"/api/v1/jobs/{jobs[1]['job']['id']}").json()["spec"]
    assert spec["kl"]["schedule"]["kind"] == "capacity"


def test_invalid_grid_paths_are_422_naming_each_path(client) -> None:  # noqa: ANN001
    base = tiny_spec()
    base["model"]["latent_dim"] = 0
    r = create(client, base=base, grid={"kl.schedule.betaa": [1, 2], "optim.lr": [-1, 0.1]})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["detail"]}
    assert {"grid.kl.schedule.betaa", "grid.optim.lr", "base.model.latent_dim"} <= fields
    betaa = next(e for e in r.json()["detail"] if e["field"] == "grid.kl.schedule.betaa")
    assert "beta" in betaa["message"]
    both = create(client, grid={"train.seed": [0]}, overrides=[{"train.seed": 1}])
    assert both.status_code == 422
    assert create(client, grid={"train.seed": 3}).status_code == 422  # not a list
    assert create(client, grid={}).status_code == 422
    before = client.get("/api/v1/jobs").json()["total"]
    assert client.get("/api/v1/jobs").json()["total"] == before  # nothing was created


def test_cancel_sweep_cancels_its_queued_jobs(client) -> None:  # noqa: ANN001
    sw = create(client, grid={"train.seed": [0, 1, 2]}).json()
    r = client.post(f"/api/v1/sweeps/{sw['id']}/cancel")
    assert r.status_code == 200
    out = r.json()
    assert out["status"] == "cancelled" and out["cancel_requested"] is True
    assert out["progress"]["counts"]["cancelled"] == 3
    assert client.post(f"/api/v1/sweeps/{uuid.uuid4()}/cancel").status_code == 404


def test_frontier_json_csv_png_svg_consistent_with_summaries(client) -> None:  # noqa: ANN001
    sw = create(client, grid={"kl.schedule.beta": [0.5, 1.0, 4.0], "train.seed": [0, 1]}).json()
    # (R, D) per beta: 0.5 and 4.0 on the frontier, 1.0 dominated; seeds differ slightly
    rd = {0.5: (9.0, 20.0), 1.0: (9.5, 21.0), 4.0: (2.0, 30.0)}
    summaries = {}
    for j in sw["jobs"][:-1]:  # the last job stays queued
        r, d = rd[j["params"]["kl.schedule.beta"]]
        r += 0.1 * j["params"]["train.seed"]
        summaries[j["job"]["id"]] = s = {"rate": r, "distortion": d, "elbo": -(r + d),
                                          "iwae": -(r + d) + 0.5, "iwae_k": 10, "step": 30}
        finish(client, j["job"]["id"], s)
    out = client.get(f"/api/v1/sweeps/{sw['id']}/rate-distortion")
    assert out.status_code == 200
    fr = out.json()
    assert fr["finished"] == 5 and fr["total"] == 6 and fr["seeds_vary"] is True
    by_job = {p["job_id"]: p for p in fr["points"]}
    assert set(by_job) == set(summaries)
    for jid, s in summaries.items():
        p = by_job[jid]
        assert (p["rate"], p["distortion"], p["elbo"], p["iwae"]) == (
            s["rate"], s["distortion"], s["elbo"], s["iwae"])
        assert p["on_frontier"] == (p["params"]["kl.schedule.beta"] != 1.0
                                    and p["params"]["train.seed"] == 0)
    agg = {a["params"]["kl.schedule.beta"]: a for a in fr["aggregated"]}
    assert agg[0.5]["n"] == 2 and agg[0.5]["rate"] == pytest.approx(9.05)
    assert agg[0.5]["spread"]["rate"]["std"] == pytest.approx(0.0707, abs=1e-4)
    assert agg[4.0]["n"] == 1 and agg[4.0]["spread"]["rate"]["std"] is None
    assert [agg[b]["on_frontier"] for b in (0.5, 1.0, 4.0)] == [True, False, True]

    text = client.get(f"/api/v1/sweeps/{sw['id']}/rate-distortion",
                      params={"format": "csv", "aggregate": "false"})
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert {r["job_id"] for r in rows} == set(summaries)
    for r in rows:
        assert float(r["rate"]) == summaries[r["job_id"]]["rate"]
        assert r["on_frontier"] == ("true" if by_job[r["job_id"]]["on_frontier"] else "false")
    agg_csv = client.get(f"/api/v1/sweeps/{sw['id']}/rate-distortion", params={"format": "csv"})
    assert len(list(csv.DictReader(io.StringIO(agg_csv.text)))) == 3

    png = client.get(f"/api/v1/sweeps/{sw['id']}/rate-distortion", params={"format": "png"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    from PIL import Image

    assert Image.open(io.BytesIO(png.content)).size[0] > 400
    svg = client.get(f"/api/v1/sweeps/{sw['id']}/rate-distortion", params={"format": "svg"})
    assert svg.headers["content-type"].startswith("image/svg+xml")
    import xml.etree.ElementTree as ET

    assert ET.fromstring(svg.content).tag.endswith("svg")
    assert "ELBO" in svg.text  # the iso-ELBO labels
    bad = client.get(f"/api/v1/sweeps/{sw['id']}/rate-distortion", params={"format": "gif"})
    assert bad.status_code == 422

    detail = client.get(f"/api/v1/sweeps/{sw['id']}").json()
    assert detail["status"] == "running" and detail["progress"]["finished"] == 5
    assert detail["progress"]["fraction"] == pytest.approx(5 / 6)

    # compare two of the jobs by step
    a, b = list(summaries)[:2]
    cmp = client.get("/api/v1/compare", params={"jobs": f"{a},{b}", "keys": "loss,rate"})
    assert cmp.status_code == 200, cmp.text
    c = cmp.json()
    assert c["steps"] == [10, 20, 30] and c["keys"] == ["loss", "rate"]
    assert c["series"][a]["rate"] == [summaries[a]["rate"]] * 3
    assert len(c["series"][b]["loss"]) == 3
    default = client.get("/api/v1/compare", params={"jobs": f"{a},{b}"}).json()
    assert default["keys"] == ["loss", "rate"]
    assert client.get("/api/v1/compare", params={"jobs": f"{a},{uuid.uuid4()}"}).status_code == 404
    assert client.get("/api/v1/compare", params={"jobs": "nope"}).status_code == 422


def test_unknown_sweep_is_404(client) -> None:  # noqa: ANN001
    assert client.get(f"/api/v1/sweeps/{uuid.uuid4()}").status_code == 404
    assert client.get(f"/api/v1/sweeps/{uuid.uuid4()}/rate-distortion").status_code == 404


def test_npz_paths_are_confined_to_the_dataset_root_per_point(client) -> None:  # noqa: ANN001
    base = tiny_spec()
    base["dataset"] = {"name": "npz", "path": "a.npz"}
    r = create(client, base=base, overrides=[
        {"dataset": {"name": "npz", "path": p}} for p in ("a.npz", "/etc/x.npz", "../b.npz")])
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert {e["field"] for e in errors} == {"spec.dataset.path"}
    assert len(errors) == 2 and "point 1" in errors[0]["message"]
    r = create(client, base=base, grid={"kl.schedule.beta": [0.5, 1.0]})
    assert r.status_code == 201, r.text
    root = client.backend.settings().datasets
    for j in r.json()["jobs"]:
        with session_scope(client.backend.db_url) as s:
            from service.db.models import Job

            assert s.get(Job, uuid.UUID(j["job"]["id"])).spec["dataset"]["path"] == str(
                root / "a.npz")
