"""SIGTERM to a worker's main process (what ``docker stop`` sends to the container's first
process, and ``vaelab serve`` to its worker): the running job is given back at once, not
run to its end. The worker asks its busy pool child to checkpoint (``worker.shutdown``), the
job goes back to waiting with its progress and the worker exits 0; the next worker resumes
the job from that checkpoint. Without the forwarding, Celery's warm shutdown waits for the
job to finish (and ``docker stop`` would SIGKILL it after its grace period)."""

from __future__ import annotations

import signal
import time

from tests.chaos.conftest import TERMINAL, ChaosStack, chaos_backend
from tests.conftest import long_spec


def test_sigterm_to_the_worker_gives_the_running_job_back_and_the_next_worker_resumes_it(
    tmp_path, redis_server, procs,  # noqa: ANN001
) -> None:
    backend = chaos_backend(tmp_path, redis_server)
    stack = ChaosStack(backend, procs)
    spec = long_spec()
    jid = stack.submit(spec)["id"]
    stack.wait_step(jid, 20)
    assert stack.job(jid)["status"] == "running", "the job ended before the signal"
    started = time.monotonic()
    stack.worker.send_signal(signal.SIGTERM)  # the main process only, as docker stop does
    assert stack.worker.wait(timeout=60) == 0
    took = time.monotonic() - started
    job = stack.job(jid)
    assert job["status"] == "queued", (job["status"], job["progress"])
    total = job["progress"]["total_steps"]
    assert 20 <= job["progress"]["step"] < total
    assert [a["ended"] for a in job["attempts_history"]] == ["shut_down"]
    log = stack.worker_log()
    assert "checkpoints its job and gives it back" in log
    assert "ERROR" not in log, log[-2000:]
    print(f"worker stopped {took:.2f} s after SIGTERM at step {job['progress']['step']} "
          f"of {total}")

    stack.start_worker()
    done = stack.wait_status(jid, TERMINAL, timeout=180)
    assert done["status"] == "succeeded", done["error"]
    assert done["progress"]["resume_step"] >= 20
    assert [a["ended"] for a in done["attempts_history"]] == ["shut_down", "succeeded"]
