"""Dashboard: from navigation to a drawn chart, in headless Chromium, on PostgreSQL.

    python bench/dashboard.py [--points 1000000] [--keys 5] [--compare-jobs 20]
        [--compare-points 10000] [--repeats 7] [--admin-url postgresql+psycopg://...]

Measured (median over ``--repeats`` page loads after one warm-up):

- ``job_page_ms``: ``GET /jobs/{id}`` for a job with ``--points`` points in each of ``--keys``
  keys, until the page has drawn every default chart (its ``vaelab:drawn`` performance mark,
  set after the charts are built from ``/metrics?max_points=2000``), measured from navigation
  start. Target <= 1,000 ms.
- ``compare_page_ms``: ``GET /compare?ids=...`` for ``--compare-jobs`` jobs x ``--keys`` keys
  of ``--compare-points`` points each, to its ``vaelab:drawn`` mark. Target <= 1,500 ms.

Points are written with the metric store's own write path (``service.db.metrics``, which
also maintains the rollups) in large batches, not through the worker's sink (the ingest rate
is ``bench/metrics_store.py``'s subject). Creates and drops a scratch database
``vaelab_bench_<random>``. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
from harness import DEFAULT_ADMIN_URL, admin_token, scratch_database, served  # noqa: E402

KEYS = ["loss", "rate", "distortion", "elbo", "beta_effective", "grad_norm", "lr", "sigma"]
TARGETS = {"job_page_ms": 1000, "compare_page_ms": 1500}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--keys", type=int, default=5, choices=range(1, len(KEYS) + 1))
    ap.add_argument("--compare-jobs", type=int, default=20)
    ap.add_argument("--compare-points", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    ap.add_argument("--quick", action="store_true",
                    help="100,000 points per key, 5 compared jobs, 3 repeats")
    args = ap.parse_args()
    if args.quick:
        args.points, args.compare_jobs, args.repeats = 100_000, 5, 3

    with scratch_database(args.admin_url) as url:
        run(url, args)


def make_job(url: str, settings, n_points: int, keys: list[str], seed: int) -> uuid.UUID:  # noqa: ANN001
    from service.db import jobs as jobs_db
    from service.db.metrics import insert_points
    from service.db.session import get_engine, session_scope

    with session_scope(url) as s:
        job = jobs_db.create_job(s, settings, {"name": f"bench{seed}"}, owner="bench")
        jid = job.id
    engine, chunk, ts = get_engine(url), 50_000, time.time()
    for lo in range(1, n_points + 1, chunk):
        rows = [{"job_id": jid, "key": k, "step": step, "ts": ts + step * 1e-6,
                 "value": math.exp(-step / n_points * 3) * (1 + 0.1 * math.sin(step / 50 + seed))
                 + 0.01 * j}
                for step in range(lo, min(lo + chunk, n_points + 1))
                for j, k in enumerate(keys)]
        with engine.begin() as conn:
            insert_points(conn, jid, rows)
    with engine.begin() as conn:
        jobs_db.record_progress(conn, jid, None, step=n_points, total_steps=n_points,
                                latest_metrics={k: {"step": n_points, "value": 0.0}
                                                for k in keys})
    return jid


def chromium():  # noqa: ANN201
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--host-resolver-rules=MAP * ~NOTFOUND, "
                "EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


def time_page(driver, page: str, repeats: int) -> list[float]:  # noqa: ANN001
    """ms from navigation start to the page's vaelab:drawn mark, per load (first dropped)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    out = []
    for _ in range(repeats + 1):
        driver.get("about:blank")
        driver.get(page)
        WebDriverWait(driver, 60).until(ec.presence_of_element_located(
            (By.CSS_SELECTOR, "body[data-ready='1']")))
        mark = driver.execute_script(
            "const m = performance.getEntriesByName('vaelab:drawn'); "
            "return m.length ? m[0].startTime : null")
        if mark is None:
            raise RuntimeError(f"{page}: no vaelab:drawn mark")
        out.append(mark)
    return out[1:]


def run(url: str, args: argparse.Namespace) -> None:
    from service.core.config import Settings
    from service.db import migrate
    from service.main import create_app

    migrate.upgrade(url)
    settings = Settings(database_url=url, broker_url="memory://", reaper_enabled=False,
                        artifact_root="/tmp/vaelab-bench-artifacts")
    keys = KEYS[:args.keys]
    t0 = time.perf_counter()
    big = make_job(url, settings, args.points, keys, 0)
    small = [make_job(url, settings, args.compare_points, keys, i + 1)
             for i in range(args.compare_jobs)]
    setup_s = time.perf_counter() - t0
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
        c.execute("ANALYZE")

    token = admin_token(url)
    with served(create_app(settings)) as base:
        driver = chromium()
        try:
            driver.get(f"{base}/login?token={token}")  # the pages' API calls carry its cookie
            job_ms = time_page(driver, f"{base}/jobs/{big}", args.repeats)
            cmp_ms = time_page(driver, f"{base}/compare?ids={','.join(map(str, small))}",
                               args.repeats)
            drawn = driver.execute_script("return document.body.dataset.drawn")
        finally:
            driver.quit()
    figures = {
        "job_page_ms": round(statistics.median(job_ms), 1),
        "compare_page_ms": round(statistics.median(cmp_ms), 1),
    }
    print(json.dumps({
        "bench": "dashboard", **figures, "targets_ms": TARGETS,
        "met": {k: figures[k] <= TARGETS[k] for k in TARGETS},
        "job_page_ms_all": [round(x, 1) for x in job_ms],
        "compare_page_ms_all": [round(x, 1) for x in cmp_ms],
        "points_per_key": args.points, "keys": len(keys), "compare_jobs": args.compare_jobs,
        "compare_points_per_key": args.compare_points, "compare_charts": int(drawn or 0),
        "setup_s": round(setup_s, 1), "repeats": args.repeats, "database": "postgresql",
        "browser": "headless chromium (selenium)", "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
