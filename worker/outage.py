"""Riding out an outage of the database during an attempt.

:func:`retry_db` repeats a database write while the database is unreachable, with backoff,
for at most the worker's grace (``VAELAB_WORKER_DB_GRACE_S``): the one place the worker waits
for the database. (The broker needs no such place in the worker: it never sends; a job that
goes back to waiting is released again by the dispatcher, which retries while the broker is
down.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

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
