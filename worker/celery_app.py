"""The Celery consumer: the app the service configures (:mod:`service.core.queue`), with this
package's tasks registered on it. ``celery -A worker.celery_app`` starts a worker from here.
No torch here: the prefork parent must never initialise CUDA before it forks."""

from __future__ import annotations

from service.core.queue import TASK_NAME, make_app

__all__ = ["TASK_NAME", "app"]

app = make_app(include=["worker.tasks"])

import worker.shutdown  # noqa: E402, F401 - a warm shutdown gives running jobs back
import worker.slots  # noqa: E402, F401 - its signal handlers register this worker's slots
