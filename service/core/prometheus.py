"""The ``/metrics`` exposition (Prometheus text format, prometheus-client).

From the database at scrape time (every API replica reports the same numbers, and nothing
is lost when one restarts): jobs by status and queue, running jobs per worker, the waiting
time (submit to first start) and run time (first start to end) of jobs as histograms, and
the metric points stored. From this API process: request latency per route.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from service.db import jobs as jobs_db
from service.db.metrics.stats import points_stored
from service.db.models import JOB_STATUSES
from service.db.session import session_scope

WAIT_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
RUN_BUCKETS = (10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600)


def _utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def histogram(name: str, doc: str, values: list[float],
              buckets: tuple[float, ...]) -> HistogramMetricFamily:
    counts = [sum(1 for v in values if v <= b) for b in buckets]
    pairs = [(str(float(b)), c) for b, c in zip(buckets, counts, strict=True)]
    pairs.append(("+Inf", len(values)))
    return HistogramMetricFamily(name, doc, buckets=pairs, sum_value=sum(values))


class DatabaseCollector:
    def __init__(self, db_url: str):
        self.db_url = db_url

    def collect(self) -> Iterator[Any]:
        with session_scope(self.db_url) as s:
            by_status = jobs_db.counts_by_status_and_queue(s)
            by_worker = jobs_db.running_by_worker(s)
            lives = jobs_db.lifetimes(s)
            points = points_stored(s)
        jobs = GaugeMetricFamily("vaelab_jobs", "Jobs by status and queue.",
                                 labels=["status", "queue"])
        queues = {q for _s, q, _n in by_status}
        have = {(st, q): n for st, q, n in by_status}
        for q in sorted(queues):
            for st in JOB_STATUSES:  # every status, 0 included, so rates and alerts work
                jobs.add_metric([st, q], have.get((st, q), 0))
        yield jobs
        running = GaugeMetricFamily("vaelab_running_jobs", "Running jobs per worker.",
                                    labels=["worker"])
        for worker, n in by_worker:
            running.add_metric([worker], n)
        yield running
        waits = [(_utc(st) - _utc(c)).total_seconds() for c, st, _f in lives if st]
        runs = [(_utc(f) - _utc(st)).total_seconds() for _c, st, f in lives if st and f]
        yield histogram("vaelab_job_wait_seconds", "Submit to first start.", waits,
                        WAIT_BUCKETS)
        yield histogram("vaelab_job_run_seconds", "First start to end (finished jobs).", runs,
                        RUN_BUCKETS)
        yield CounterMetricFamily("vaelab_metric_points", "Metric points stored.", points)


def make_registry(db_url: str) -> tuple[CollectorRegistry, Histogram]:
    """A registry of its own per app (tests build several apps in one process)."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(db_url))
    latency = Histogram("vaelab_api_request_seconds", "API request latency.",
                        ["method", "route", "status"], registry=registry,
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
    return registry, latency


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(registry), CONTENT_TYPE_LATEST


class LatencyMiddleware:
    """ASGI middleware observing each HTTP request's duration (to the end of its body)."""

    def __init__(self, app: Any, latency: Histogram):
        self.app, self.latency = app, latency

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.latency.labels(scope["method"], route, str(status[0])).observe(
                time.perf_counter() - started)
