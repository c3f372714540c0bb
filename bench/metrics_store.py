"""Metric store on PostgreSQL: ingest rate through the worker's SQL sink and the latency of
``GET /api/v1/jobs/{id}/metrics?max_points=1000`` over a 1,000,000-point series.

    python bench/metrics_store.py [--points 1000000] [--admin-url postgresql+psycopg://...]

Creates and drops a scratch database ``vaelab_bench_<random>``. Targets: >= 50,000 points/s;
median latency <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from harness import DEFAULT_ADMIN_URL, admin_token, scratch_database, served  # noqa: E402

TARGETS = {"ingest_points_per_s_min": 50_000, "query_median_ms_max": 100}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    ap.add_argument("--quick", action="store_true", help="100,000 points, 10 requests")
    args = ap.parse_args()
    if args.quick:
        args.points, args.requests = 100_000, 10

    with scratch_database(args.admin_url) as url:
        run(url, args.points, args.requests)


def run(url: str, n_points: int, n_requests: int) -> None:
    from service.core.config import Settings
    from service.db import jobs as jobs_db
    from service.db import migrate
    from service.db.session import get_engine, session_scope
    from service.main import create_app
    from worker.sink import SqlMetricSink

    migrate.upgrade(url)
    settings = Settings(database_url=url, broker_url="memory://", reaper_enabled=False,
                        artifact_root="/tmp/vaelab-bench-artifacts")
    with session_scope(url) as s:
        jid = jobs_db.create_job(s, settings, {"name": "bench"}, owner="bench").id

    # ---- ingest: the worker's sink, batches of 1,000 points, one key
    sink = SqlMetricSink(get_engine(url), jid, batch_points=1000, batch_seconds=2.0)
    t0 = time.perf_counter()
    for step in range(1, n_points + 1):
        v = math.sin(step / 5000.0) + (25.0 if step % 99_991 == 0 else 0.0)
        sink.log(step, {"loss": v})
    sink.flush()
    ingest_s = time.perf_counter() - t0
    rate = n_points / ingest_s
    with get_engine(url).connect() as conn:
        conn.exec_driver_sql("ANALYZE metrics")
        conn.commit()

    # ---- query: real HTTP against uvicorn in a thread
    lat = []
    auth = {"Authorization": f"Bearer {admin_token(url)}"}
    with served(create_app(settings)) as api, httpx.Client(timeout=30, headers=auth) as http:
        base = f"{api}/api/v1/jobs/{jid}/metrics"
        r = http.get(base, params={"keys": "loss", "max_points": 1000})  # warm-up
        series = r.json()["series"][0]
        for _ in range(n_requests):
            t = time.perf_counter()
            r = http.get(base, params={"keys": "loss", "max_points": 1000})
            r.raise_for_status()
            lat.append((time.perf_counter() - t) * 1000)
    spikes_kept = sum(1 for v in series["values"] if v is not None and v > 20)
    print(f"points={n_points}")
    print(f"ingest_points_per_s={rate:,.0f}  (target >= 50,000; {ingest_s:.1f} s)")
    print(f"query_median_ms={statistics.median(lat):.1f}  p90_ms="
          f"{sorted(lat)[int(0.9 * len(lat)) - 1]:.1f}  (target <= 100; max_points=1000, "
          f"{len(series['steps'])} points returned, {spikes_kept} of "
          f"{n_points // 99_991} spikes kept)")
    figures = {"ingest_points_per_s": round(rate), "query_median_ms": round(
        statistics.median(lat), 1)}
    print(json.dumps({"bench": "metrics_store", "points": n_points, **figures,
                      "targets": TARGETS, "met": {
                          "ingest_points_per_s": rate >= TARGETS["ingest_points_per_s_min"],
                          "query_median_ms": figures["query_median_ms"]
                          <= TARGETS["query_median_ms_max"]}}))


if __name__ == "__main__":
    main()
