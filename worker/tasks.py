"""Celery tasks. Thin: take a job id, hand it to :func:`worker.runner.run_job`."""

from __future__ import annotations

import ctypes
import logging
import signal
import sys

from celery.signals import worker_process_init
from sqlalchemy.exc import OperationalError

from service.core.config import get_settings
from worker.celery_app import TASK_NAME, app

log = logging.getLogger(__name__)


@app.task(name=TASK_NAME, bind=True, max_retries=20)
def train_job(self, job_id: str) -> str:  # noqa: ANN001
    from worker.runner import run_job  # torch is imported in the child, at the first job

    try:
        return run_job(job_id, get_settings(), worker=self.request.hostname or "worker")
    except OperationalError as exc:
        # the database is unreachable: an infrastructure problem, so retry; training
        # failures never reach here (run_job records them as `failed`)
        log.warning("job %s: database error, retrying: %s", job_id, exc)
        raise self.retry(exc=exc, countdown=10) from exc


@worker_process_init.connect
def _child_init(**_kwargs) -> None:  # noqa: ANN003
    """In each prefork child: die with the parent (a SIGKILLed worker leaves no orphan
    training on), and never reuse database connections inherited across the fork. (SIGTERM
    is handled per job in worker.runner: billiard resets handlers set here.)"""
    from service.db.session import dispose_all

    dispose_all()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            log.debug("prctl unavailable; orphaned children are not killed")
