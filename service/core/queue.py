"""The Celery producer: the app's configuration, the queues (named in settings), sending a
job by task name, and the broker check behind ``/readyz``.

The service configures the app and sends ``vaelab.train_job`` by name, so it never imports
the worker; the dispatcher (:mod:`service.core.dispatcher`) is the only sender, to the queue
of the worker it chose (:func:`worker_queue`); ``worker.celery_app`` builds its consumer
from :func:`make_app` and registers the tasks on it. Late ack + reject-on-worker-lost +
prefetch 1: a message is acknowledged only after its job ends, and a worker holds at most
one job it is not running. The visibility
timeout (Redis) is longer than the longest job so Redis does not redeliver a job that is
still running; worker deaths are handled by the heartbeat reaper instead. No torch here: the
prefork parent must never initialise CUDA before it forks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from celery import Celery
from kombu import Exchange, Queue

from service.core.config import Settings, get_settings

log = logging.getLogger(__name__)

TASK_NAME = "vaelab.train_job"

_APPS: dict[str, Celery] = {}
_LOCK = threading.Lock()


def _queue(name: str) -> Queue:
    # an exchange per queue: a message for one queue can never land in the other
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def _is_redis(url: str) -> bool:
    return url.startswith(("redis", "rediss"))


def make_app(settings: Settings | None = None, include: Sequence[str] = ()) -> Celery:
    """A Celery app for ``settings``' broker; ``include`` names the task modules a consumer
    loads (the producer sends by name and needs none)."""
    s = settings or get_settings()
    app = Celery("vaelab", broker=s.broker, include=list(include))
    transport_options: dict = {}
    if _is_redis(s.broker):
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
        # a broker connection lost during a job does not stop the job: the attempt is owned
        # by its lease in the database, not by the message, so a copy of the message
        # delivered meanwhile is dropped by `claim`, and the message of a finished job that
        # could not be acked is dropped the same way when it comes back. Cancelling
        # (Celery's 6.0 default) would throw away the work since the last checkpoint and
        # use up an attempt on every broker restart.
        worker_cancel_long_running_tasks_on_connection_loss=False,
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
    """One producer app per broker URL."""
    with _LOCK:
        app = _APPS.get(settings.broker)
        if app is None:
            app = _APPS[settings.broker] = make_app(settings)
        return app


def worker_queue(worker: str) -> str:
    """The queue only ``worker`` consumes: the dispatcher sends a released job there, to a
    slot it knows is free."""
    return f"vaelab.w.{worker}"


def worker_queue_for(name: str) -> Queue:
    return _queue(worker_queue(name))


def send(settings: Settings, job_id: str, worker: str) -> None:
    """Send ``train_job(job_id)`` to ``worker``'s own queue (the dispatcher is the only
    caller). Raises what the broker raises when it is unreachable; kombu's own retries are
    bounded so a broker outage costs the dispatcher seconds, not minutes."""
    app = app_for(settings)
    app.send_task(TASK_NAME, args=[job_id], queue=worker_queue_for(worker),
                  retry=True, retry_policy={"max_retries": 1, "interval_start": 0.2,
                                            "interval_step": 0.5, "interval_max": 1.0})


def forget_deliveries(settings: Settings, delivery_tags: Sequence[str]) -> int:
    """Best effort: drop messages of ended attempts from Redis's unacked set (kombu's
    ``unacked`` hash and ``unacked_index`` zset, the channel's own key names). A late-ack
    message whose worker was killed stays there until the visibility timeout (days), and
    would then be redelivered; its job has ended or another attempt holds it. Returns how
    many entries were removed; other brokers keep no such set (0)."""
    tags = [t for t in delivery_tags if t]
    if not tags or not _is_redis(settings.broker):
        return 0
    try:
        with app_for(settings).connection_for_write() as conn:
            channel = conn.default_channel
            client = channel.client
            with client.pipeline() as pipe:
                pipe.hdel(channel.unacked_key, *tags)
                pipe.zrem(channel.unacked_index_key, *tags)
                removed, _ = pipe.execute()
    except Exception:  # noqa: BLE001 - best effort: the visibility timeout still bounds it
        log.warning("could not clear stale unacked messages %s", tags, exc_info=True)
        return 0
    if removed:
        log.info("cleared %d stale unacked message(s)", removed)
    return int(removed)


def check_broker(settings: Settings) -> str:
    """"ok", or why the broker refuses a connection (one try, two seconds)."""
    try:
        with app_for(settings).connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001 - any failure is "not ready", with its reason
        return f"unreachable: {type(exc).__name__}: {exc}"
    return "ok"
