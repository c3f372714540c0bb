"""The reaper: a background thread (in the API process) that re-enqueues jobs whose worker
died, see :func:`service.core.jobs.reap`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from service.core import jobs as jobops
from service.core.config import Settings
from service.db.session import UNAVAILABLE, note_unavailable, session_scope

log = logging.getLogger(__name__)


class Reaper(threading.Thread):
    def __init__(self, settings: Settings, enqueue: Callable):
        super().__init__(name="vaelab-reaper", daemon=True)
        self.settings, self.enqueue = settings, enqueue
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.settings.reaper_interval_s):
            try:
                with session_scope(self.settings.db_url) as s:
                    jobops.reap(s, self.settings, self.enqueue)
            except UNAVAILABLE as exc:
                # reap nothing until the database has been back a whole stale window
                note_unavailable(self.settings.db_url)
                log.warning("reaper pass: database unavailable: %s",
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            except Exception:  # noqa: BLE001 - keep reaping after a transient failure
                log.exception("reaper pass failed")

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)
