"""A worker's slots: it consumes only its own queue, registers its slots (device kind, GPU
index, name and memory) in the ``workers`` table, and heartbeats from the parent process,
so the dispatcher sends it a job only when a slot is free.

The ``-Q`` queues a worker is started with (``gpu``, ``cpu`` or both) say which device kinds
it serves; it stops consuming them and consumes ``vaelab.w.<its name>`` instead (the broker
carries only released jobs). No torch here: the GPU is described by ``nvidia-smi``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from celery.signals import celeryd_after_setup, worker_ready, worker_shutdown

from service.core.config import get_settings
from service.core.queue import worker_queue_for
from service.db import workers as workers_db
from service.db.session import session_scope

log = logging.getLogger(__name__)

_STATE: dict[str, object] = {}

# The parent's database writes and billiard's fork of a pool child exclude each other: a
# child forked while a parent thread held an open SQLite transaction would inherit SQLite's
# per-process lock state for the file mid-transaction (SQLite: never carry a connection
# across fork()). Suspected cause of a fresh child getting "database is locked" on every
# claim for minutes while other processes wrote freely. A fork waits for the write to end.
_FORK_GUARD = threading.Lock()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_FORK_GUARD.acquire, after_in_parent=_FORK_GUARD.release,
                        after_in_child=_FORK_GUARD.release)


@contextmanager
def _write(url: str) -> Iterator:  # of service.db sessions (no SQLAlchemy here)
    """A session of the parent's own writes, never open across a fork."""
    with _FORK_GUARD, session_scope(url) as s:
        yield s


def device_kind(queues: set[str], gpu_queue: str, cpu_queue: str) -> str:
    if gpu_queue in queues and cpu_queue in queues:
        return "any"
    return "gpu" if gpu_queue in queues else "cpu"


def describe_gpu(index: str | None) -> tuple[int | None, str | None, int | None]:
    """(index, name, memory in bytes) of the GPU this worker owns, from nvidia-smi."""
    if index is None:
        return None, None, None
    try:
        out = subprocess.run(["nvidia-smi", f"--id={index}", "--query-gpu=name,memory.total",
                              "--format=csv,noheader,nounits"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        name, mib = (p.strip() for p in out.split(","))
        return int(index), name, int(float(mib)) * 1024**2
    except (OSError, subprocess.SubprocessError, ValueError):
        return int(index) if index.isdigit() else None, None, None


@celeryd_after_setup.connect
def _own_queue(sender: str, instance, **_kwargs) -> None:  # noqa: ANN001
    settings = get_settings()
    queues = instance.app.amqp.queues
    consumed = set(queues.consume_from or {})
    _STATE["kind"] = device_kind(consumed, settings.gpu_queue, settings.cpu_queue)
    _STATE["name"] = sender
    _STATE["slots"] = int(instance.concurrency or 1)
    own = worker_queue_for(sender)
    queues.select_add(own)
    if queues.consume_from is None:  # no -Q: it consumed every queue; now only its own
        queues.select([own.name])
    for name in consumed:
        queues.deselect(name)


@worker_ready.connect
def _register(**_kwargs) -> None:  # noqa: ANN003
    if "name" not in _STATE:
        return
    settings = get_settings()
    hb = SlotHeartbeat(settings.db_url, str(_STATE["name"]), str(_STATE["kind"]),
                       int(_STATE["slots"]), settings.heartbeat_interval_s)
    hb.register()
    hb.start()
    _STATE["heartbeat"] = hb


@worker_shutdown.connect
def _deregister(**_kwargs) -> None:  # noqa: ANN003
    hb = _STATE.get("heartbeat")
    if isinstance(hb, SlotHeartbeat):
        hb.stop()


class SlotHeartbeat(threading.Thread):
    def __init__(self, url: str, name: str, kind: str, slots: int, interval: float):
        super().__init__(name="vaelab-slots", daemon=True)
        self.url, self.name, self.kind, self.slots, self.interval = (url, name, kind, slots,
                                                                      interval)
        self.gpu = describe_gpu(os.environ.get("VAELAB_WORKER_GPU"))
        self._stop_event = threading.Event()

    def register(self) -> None:
        index, gpu_name, memory = self.gpu
        if memory is None and index is None:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        try:
            with _write(self.url) as s:
                workers_db.register(s, self.name, device_kind=self.kind, slots=self.slots,
                                    gpu_index=index, gpu_name=gpu_name, memory_bytes=memory)
            log.info("worker %s: %d %s slot(s) registered", self.name, self.slots, self.kind)
        except Exception:  # noqa: BLE001 - the heartbeat registers again once it can
            log.exception("worker %s: could not register its slots", self.name)

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                with _write(self.url) as s:
                    alive = workers_db.beat(s, self.name)
                if not alive:
                    self.register()
            except Exception:  # noqa: BLE001 - a transient database error: beat again later
                log.warning("worker %s: slot heartbeat failed", self.name, exc_info=True)

    def stop(self) -> None:
        self._stop_event.set()
        try:
            with _write(self.url) as s:
                workers_db.deregister(s, self.name)
        except Exception:  # noqa: BLE001 - its heartbeat goes stale instead
            log.warning("worker %s: could not remove its slots", self.name, exc_info=True)
