"""Wall time of metric points through the API (both backends): ``with_ts=true`` returns each
point's stamp (the time the worker's sink wrote its batch) for full, downsampled (rollups and
exact scan) and windowed reads, and on /compare aligned like the values; without it the
answer is as before; the SSE batches carry their stamp."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.db import jobs as jobs_db
from service.db.models import Metric
from service.db.session import get_engine, session_scope
from tests.conftest import tiny_spec
from worker.sink import SqlMetricSink

N = 20_000  # enough points for the rollup path at max_points=100


@pytest.fixture(scope="module")
def site(backend):  # noqa: ANN001, ANN201
    from service.main import create_app

    url = backend.db_url
    app = create_app(backend.settings(reaper_enabled=False))
    jobs = []
    for n in (N, 300):
        with session_scope(url) as s:
            jid = jobs_db.create_job(s, backend.settings(), tiny_spec(), owner="t").id
        sink = SqlMetricSink(get_engine(url), jid, batch_points=700, batch_seconds=3600)
        for step in range(1, n + 1):
            sink.log(step, {"loss": 1.0 / step + (50.0 if step == 777 else 0.0),
                            **({"rate": float(step)} if step % 3 == 0 else {})})
        sink.flush()
        jobs.append(jid)
    with session_scope(url) as s:
        stamps = {(j, k, st): ts for j, k, st, ts in s.execute(
            select(Metric.job_id, Metric.key, Metric.step, Metric.ts)
            .where(Metric.job_id.in_(jobs))).all()}
    with TestClient(app, headers=backend.auth) as c:
        yield c, jobs, stamps


def _series(client, jid, **params):  # noqa: ANN001, ANN003, ANN202
    r = client.get(f"/api/v1/jobs/{jid}/metrics", params=params)
    assert r.status_code == 200, r.text
    return {s["key"]: s for s in r.json()["series"]}


@pytest.mark.parametrize("params", [
    {"max_points": 100},  # rollups
    {"max_points": 5000},  # exact scan, downsampled
    {"max_points": 50_000},  # every point
    {"max_points": 64, "start_step": 700, "end_step": 9_000},  # a window
])
def test_each_point_carries_its_own_stamp(site, params) -> None:  # noqa: ANN001
    client, (big, _small), stamps = site
    series = _series(client, big, keys="loss,rate", with_ts="true", **params)
    for key, s in series.items():
        assert len(s["ts"]) == len(s["steps"]) > 0
        assert s["ts"] == [stamps[big, key, st] for st in s["steps"]]
        assert s["ts"] == sorted(s["ts"])  # later steps were written later
    if params["max_points"] == 100:
        assert series["loss"]["downsampled"]
        assert 777 in series["loss"]["steps"]  # the spike, with its stamp
    assert len({*series["loss"]["ts"]}) > 1  # several batches


def test_without_with_ts_nothing_changes(site) -> None:  # noqa: ANN001
    client, (big, _small), _ = site
    plain = _series(client, big, keys="loss", max_points=100)
    timed = _series(client, big, keys="loss", max_points=100, with_ts="true")
    assert plain["loss"]["ts"] is None
    assert {**timed["loss"], "ts": None} == plain["loss"]


def test_compare_aligns_the_stamps_like_the_values(site) -> None:  # noqa: ANN001
    client, (big, small), stamps = site
    r = client.get("/api/v1/compare", params={"jobs": f"{big},{small}", "keys": "loss,rate",
                                              "max_points": 200, "with_ts": "true"})
    assert r.status_code == 200, r.text
    body = r.json()
    for jid in (big, small):
        for key in ("loss", "rate"):
            values, ts = body["series"][str(jid)][key], body["ts"][str(jid)][key]
            assert len(ts) == len(values) == len(body["steps"])
            for st, v, t in zip(body["steps"], values, ts, strict=True):
                assert (v is None) == (t is None) or stamps.get((jid, key, st)) is None
                if v is not None:
                    assert t == stamps[jid, key, st]
    assert client.get("/api/v1/compare", params={"jobs": str(small)}).json()["ts"] is None
    bad = client.get("/api/v1/compare", params={"jobs": str(small), "with_ts": "maybe"})
    assert bad.status_code == 422 and "with_ts" in bad.text
