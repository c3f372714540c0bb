"""GET /metrics (both backends): Prometheus' text format, parsed with prometheus_client's
own parser; a finished job is counted, its waiting and run times land in the histograms, and
requests are timed per route template."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

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


def scrape(client) -> dict[str, list]:  # noqa: ANN001
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(r.text):
        out.setdefault(fam.name, []).extend(fam.samples)
    return out


def _value(samples: list, name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name
               and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_parse_and_count_a_finished_job(client) -> None:  # noqa: ANN001
    before = scrape(client)
    jid = client.post("/api/v1/jobs", json={"spec": tiny_spec(),
                                            "resources": {"device": "cpu"}}).json()["id"]
    queue = client.get(f"/api/v1/jobs/{jid}").json()["queue"]
    url, lease = client.backend.db_url, str(uuid.uuid4())
    with session_scope(url) as s:
        assert jobs_db.claim(s, uuid.UUID(jid), lease, "prom-worker", 60)
    mid = scrape(client)
    assert _value(mid["vaelab_running_jobs"], "vaelab_running_jobs",
                  worker="prom-worker") == 1
    sink = SqlMetricSink(get_engine(url), uuid.UUID(jid), lease)
    for step in range(1, 11):
        sink.log(step, {"loss": 1.0, "rate": 2.0})
    sink.flush()
    with session_scope(url) as s:
        assert jobs_db.finish(s, uuid.UUID(jid), lease, "succeeded", step=10)
    after = scrape(client)

    def jobs(m: dict, status: str) -> float:
        return _value(m["vaelab_jobs"], "vaelab_jobs", status=status, queue=queue)

    assert jobs(after, "succeeded") == jobs(before, "succeeded") + 1
    assert jobs(after, "running") == jobs(mid, "running") - 1
    runs = lambda m: _value(m.get("vaelab_job_run_seconds", []),  # noqa: E731
                            "vaelab_job_run_seconds_count")
    assert runs(after) == runs(before) + 1
    assert _value(after["vaelab_job_wait_seconds"], "vaelab_job_wait_seconds_count") >= 1
    points = lambda m: _value(m["vaelab_metric_points"], "vaelab_metric_points_total")  # noqa: E731
    assert points(after) == points(before) + 20
    lat = after["vaelab_api_request_seconds"]
    assert _value(lat, "vaelab_api_request_seconds_count", method="GET",
                  route="/api/v1/jobs/{job_id}", status="200") >= 1
    assert not any(jid in s.labels.get("route", "") for s in lat)  # templates, not paths


def test_the_grafana_view_has_a_time_column(client) -> None:  # noqa: ANN001
    from datetime import UTC, datetime

    from sqlalchemy import text

    jid = client.post("/api/v1/jobs", json={"spec": tiny_spec()}).json()["id"]
    url, lease = client.backend.db_url, str(uuid.uuid4())
    with session_scope(url) as s:
        assert jobs_db.claim(s, uuid.UUID(jid), lease, "w", 60)
    sink = SqlMetricSink(get_engine(url), uuid.UUID(jid), lease)
    sink.log(5, {"loss": 1.5})
    sink.flush()
    with session_scope(url) as s:  # leave no running job behind for other tests' reapers
        assert jobs_db.finish(s, uuid.UUID(jid), lease, "succeeded", step=5)
    with session_scope(url) as s:
        rows = s.execute(text("SELECT time, value, job_name, ts FROM metrics_timeseries "
                              "WHERE key = 'loss' AND step = 5 ORDER BY time")).all()
    times = [r for r in rows if r.value == 1.5 and r.job_name == "tiny"]
    assert times
    t = times[-1].time
    t = datetime.fromisoformat(t) if isinstance(t, str) else t  # SQLite: text, UTC
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    assert abs(t.timestamp() - times[-1].ts) < 1.0  # the sink's ts, as a time
