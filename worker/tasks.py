"""Celery tasks. Thin: take a job id, hand it to :func:`worker.runner.run_job`, which claims
the job and records its outcome through ``service.db``."""

from __future__ import annotations

import ctypes
import logging
import signal
import sys

from celery.signals import worker_process_init

from service.core.config import get_settings
from service.db.session import DatabaseUnavailable
from worker.celery_app import TASK_NAME, app

log = logging.getLogger(__name__)


class _RejectWithoutTraceback(logging.Filter):
    """A message handed back at shutdown (``Reject``, see worker.runner) is an expected
    event: Celery logs it with its traceback; keep the one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        from celery.exceptions import Reject

        if record.exc_info and isinstance(record.exc_info[1], Reject):
            record.exc_info, record.exc_text = None, None
        return True


logging.getLogger("celery.app.trace").addFilter(_RejectWithoutTraceback())


# The database unreachable is an infrastructure problem, so Celery retries it (backoff
# 2, 4, 8 … s capped at a minute, jittered so workers do not return in step); training
# failures never reach here (run_job records them as `failed`).
@app.task(name=TASK_NAME, bind=True, autoretry_for=(DatabaseUnavailable,), max_retries=20,
          retry_backoff=2, retry_backoff_max=60, retry_jitter=True)
def train_job(self, job_id: str) -> str:  # noqa: ANN001
    from worker.runner import run_job  # torch is imported in the child, at the first job

    # the broker's tag of this message (kombu's virtual transports put it in the message's
    # properties): kept with the attempt, so a stale unacked copy can be cleared later
    tag = (getattr(self.request, "properties", None) or {}).get("delivery_tag")
    return run_job(job_id, get_settings(), worker=self.request.hostname or "worker",
                   delivery_tag=str(tag) if tag is not None else None)


@worker_process_init.connect
def _child_init(**_kwargs) -> None:  # noqa: ANN003
    """In each prefork child: die with the parent (a SIGKILLed worker leaves no orphan
    training on), never reuse database connections inherited across the fork, and set the
    child's CPU threads (vae_engine/threads.py: never more than it may use). (SIGTERM
    is handled per job in worker.runner: billiard resets handlers set here.)"""
    from service.db.session import dispose_all
    from vae_engine import threads

    dispose_all(close=False)
    # Before torch loads (at the first job): OpenMP threads that sleep rather than spin at a
    # barrier, and this child's own thread count (VAELAB_WORKER_THREADS, or picked).
    threads.passive_wait()
    threads.set_default_threads(get_settings().worker_threads)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            log.debug("prctl unavailable; orphaned children are not killed")
