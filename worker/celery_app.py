"""The Celery application, configured for long GPU jobs.

Late ack + reject-on-worker-lost + prefetch 1: a message is acknowledged only after its job
ends, and a worker holds at most one job it is not running. The visibility timeout (Redis)
is longer than the longest job so Redis does not redeliver a job that is still running;
worker deaths are handled by the heartbeat reaper instead. This module imports no torch:
the prefork parent must never initialise CUDA before it forks.
"""

from __future__ import annotations

import threading

from celery import Celery
from kombu import Exchange, Queue

from service.core.config import Settings, get_settings

TASK_NAME = "vaelab.train_job"

_APPS: dict[str, Celery] = {}
_LOCK = threading.Lock()


def _queue(name: str) -> Queue:
    # an exchange per queue: a message for one queue can never land in the other
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def make_app(settings: Settings | None = None) -> Celery:
    s = settings or get_settings()
    app = Celery("vaelab", broker=s.broker, include=["worker.tasks"])
    transport_options: dict = {}
    if s.broker.startswith(("redis", "rediss")):
        transport_options = {
            "visibility_timeout": s.visibility_timeout_s,
            "priority_steps": list(range(10)),
            "sep": ":",
            "queue_order_strategy": "priority",
        }
    elif s.embedded_broker:
        # kombu hands these to create_engine: wait on SQLite's lock rather than fail
        transport_options = {"connect_args": {"timeout": 30}}
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_queues=[_queue(s.gpu_queue), _queue(s.cpu_queue)],
        task_default_queue=s.cpu_queue,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        # virtual transports (the embedded broker) have no fan-out worth polling for
        worker_enable_remote_control=not s.embedded_broker,
    )
    return app


def app_for(settings: Settings) -> Celery:
    """One producer app per broker URL (the API enqueues through this)."""
    with _LOCK:
        app = _APPS.get(settings.broker)
        if app is None:
            app = _APPS[settings.broker] = make_app(settings)
        return app


def enqueue(settings: Settings, job) -> None:  # noqa: ANN001 (a service.db.models.Job)
    """Send ``train_job(job.id)`` to the job's queue. API priority 0..9, 9 most urgent."""
    app = app_for(settings)
    priority = int(job.priority)
    if settings.broker.startswith(("redis", "rediss")):
        priority = 9 - priority  # kombu's Redis transport serves 0 first
    app.send_task(TASK_NAME, args=[str(job.id)], queue=job.queue, priority=priority)


app = make_app()
