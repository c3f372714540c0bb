"""A worker asked to stop (SIGTERM: ``docker stop``, ``vaelab serve``'s Ctrl-C, systemd;
SIGINT: Ctrl-C on ``vaelab worker``) gives its running jobs back instead of finishing them.

Celery's warm shutdown waits for every running task to end, and a training job may run for
hours: ``docker stop`` would wait out its grace period and then SIGKILL the job, which costs
it an attempt and every step since its last checkpoint. So when the warm shutdown begins, the
parent sends SIGTERM to each pool child that is running a task (and only to those): the job
checkpoints at its next step and records ``queued`` (:func:`worker.runner.on_sigterm`). A
flag in memory shared with the children (:func:`parent_stopping`) tells that child the stop
is its parent's: it returns from the task, so the message is acked and the closing pool ends
the child, instead of leaving at once (which billiard reports as a lost worker, with an ERROR
and a traceback). An idle child is left to the pool, which closes it the same way.
"""

from __future__ import annotations

import mmap
import os
import signal

from celery.signals import worker_shutting_down
from celery.worker import state

# one byte of anonymous shared memory, mapped before the pool forks: children see the write
_STOPPING = mmap.mmap(-1, 1)


def parent_stopping() -> bool:
    """In a pool child: whether the worker process it belongs to is in a warm shutdown."""
    return _STOPPING[0] == 1


def busy_children() -> set[int]:
    """The pids of this worker's pool children that hold a task now."""
    return {pid for req in list(state.active_requests)
            if (pid := getattr(req, "worker_pid", None)) and pid != os.getpid()}


@worker_shutting_down.connect
def _stop_running_jobs(sig: str = "", how: str = "", **_kwargs) -> None:  # noqa: ANN003
    if how != "Warm":
        return  # a cold shutdown terminates the pool itself
    _STOPPING[0] = 1
    for pid in busy_children():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        # a signal handler: a raw write, not logging (whose lock the handler may have cut into)
        os.write(2, f"worker: {sig or 'shutdown'}: pool child {pid} checkpoints its job and "
                    f"gives it back\n".encode())
