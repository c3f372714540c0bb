"""Broker faults against real API and worker processes on a Redis of the test's own (the
database is SQLite: only the broker is disturbed here).

(b) Redis restarted for 5 s mid-job: the job succeeds with no operator action within 60 s of
Redis returning, and the SAME worker process runs the next job.
A pool child that gets SIGTERM mid-job checkpoints, gives the job back (queued, with its
progress), and exits; billiard starts a fresh child and the job resumes in the same worker.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.chaos.conftest import TERMINAL, ChaosStack, chaos_backend
from tests.conftest import long_spec, tiny_spec, wait_for


def test_redis_restart_mid_job_needs_no_operator(tmp_path, redis_server, procs) -> None:  # noqa: ANN001
    backend = chaos_backend(tmp_path, redis_server)
    stack = ChaosStack(backend, procs)
    jid = stack.submit(long_spec())["id"]
    stack.wait_step(jid, 20)
    worker_pid = stack.worker.pid
    redis_server.stop()
    assert stack.job(jid)["status"] == "running", "the job ended before Redis went down"
    time.sleep(5.0)
    redis_server.start()
    back_at = time.monotonic()
    job = stack.wait_status(jid, TERMINAL, timeout=60)
    done_after = time.monotonic() - back_at
    assert job["status"] == "succeeded", job["error"]
    # the same worker process serves the next job
    nxt = stack.submit(tiny_spec(epochs=1))["id"]
    job2 = stack.wait_status(nxt, TERMINAL, timeout=60)
    next_after = time.monotonic() - back_at
    assert job2["status"] == "succeeded", job2["error"]
    assert stack.worker.poll() is None and stack.worker.pid == worker_pid
    log = stack.worker_log()
    assert log.count("rejected") < 5, "the worker rejected messages in a loop"
    print(f"redis back; job done {done_after:.1f} s later, next job done "
          f"{next_after:.1f} s later; attempts {job['attempts']}")


def test_sigterm_to_the_pool_child_requeues_and_the_worker_goes_on(tmp_path, redis_server,  # noqa: ANN001
                                                                    procs) -> None:
    backend = chaos_backend(tmp_path, redis_server)
    stack = ChaosStack(backend, procs)
    jid = stack.submit(long_spec())["id"]
    stack.wait_step(jid, 20)
    child = _pool_child(stack.worker.pid)
    os.kill(child, signal.SIGTERM)
    # the child stops at its next step with a checkpoint, records queued and exits
    wait_for(lambda: not Path(f"/proc/{child}").exists() or _zombie(child), 60,
             "the pool child to exit")
    job = stack.wait_status(jid, TERMINAL, timeout=120)
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 2 and job["progress"]["resume_step"] >= 20
    assert stack.worker.poll() is None  # the parent stayed and a new child ran the job
    assert _pool_child(stack.worker.pid) != child
    assert "exiting after SIGTERM" in stack.worker_log()


def _pool_child(parent: int) -> int:
    """The pool child of ``vaelab worker`` (its process tree: cli -> celery -> child)."""
    def children(pid: int) -> list[int]:
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    found = wait_for(lambda: _leaves(parent, children), 30, "a pool child")
    return found[0]


def _leaves(pid: int, children) -> list[int]:  # noqa: ANN001
    kids = children(pid)
    if not kids:
        return []
    out = []
    for k in kids:
        out.extend(_leaves(k, children) or [k])
    # the deepest processes are the pool children
    return out


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
