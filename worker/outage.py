"""Riding out an outage of the database or the broker during an attempt.

:func:`retry_db` repeats a database write while the database is unreachable, with backoff,
for at most the worker's grace (``VAELAB_WORKER_DB_GRACE_S``); :func:`resend` sends a job's
message again after its attempt ended, retrying while the broker is down. Both are the only
places the worker waits for infrastructure, so a later dispatcher (the database as the only
sender) replaces :func:`resend` alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from service.core.config import Settings
from service.core.queue import enqueue as send
from service.db.models import Job
from service.db.session import UNAVAILABLE

log = logging.getLogger(__name__)

T = TypeVar("T")


def retry_db(fn: Callable[[], T], grace_s: float, what: str) -> T:
    """``fn()``, repeated (0.5 s, 1 s, 2 s … 5 s apart) while the database is unavailable;
    the error once ``grace_s`` has passed."""
    deadline = time.monotonic() + grace_s
    delay = 0.5
    while True:
        try:
            return fn()
        except UNAVAILABLE as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s: database unavailable (%s); retrying in %.1f s", what,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def resend(settings: Settings, job: Job, max_wait_s: float = 300.0) -> None:
    """Send ``job``'s message again, retrying with backoff (1 s, 2 s … 5 s) while the broker
    refuses connections, up to ``max_wait_s``; then the error (the reaper's re-send of jobs
    queued too long is the next safety net). Kombu retries the publish itself
    (``send_task(retry_policy=…)``)."""
    policy = {"max_retries": max(1, int(max_wait_s / 5)), "interval_start": 1,
              "interval_step": 1, "interval_max": 5}
    send(settings, job, retry=True, retry_policy=policy)
