"""(a) SIGKILL of the worker mid-job, on a Redis and a PostgreSQL of the test's own: the job
resumes from its latest checkpoint and succeeds, every (key, step) is written exactly once,
and every value equals the one an uninterrupted run of the same spec logs (training is
deterministic on CPU, resume restores the RNG and optimizer state exactly). Moved here
from tests/e2e/test_jobs.py and extended with the comparison."""

from __future__ import annotations

import signal
import uuid

from sqlalchemy import select

from service.db.models import Artifact, Job, Metric
from service.db.session import session_scope
from tests.chaos.conftest import TERMINAL, ChaosStack, chaos_backend
from tests.conftest import Procs, long_spec, wait_for

# wall-clock measurements, different in any two runs
UNTIMED = ("examples_per_s", "metrics_seconds")


def _checkpoints(db_url: str, jid: str) -> list[int]:
    with session_scope(db_url) as s:
        return list(s.scalars(select(Artifact.step).where(
            Artifact.job_id == uuid.UUID(jid), Artifact.kind == "checkpoint")
            .order_by(Artifact.step)))


def _reference(spec: dict, tmp) -> dict[tuple[str, int], float | None]:  # noqa: ANN001
    from vae_engine import train
    from vae_engine.io import ListSink, LocalArtifacts

    sink = ListSink()
    train(spec, sink, LocalArtifacts(tmp / "reference"), device="cpu")
    return {(k, step): v for step, m in sink.points for k, v in m.items()
            if not k.endswith(UNTIMED)}


def test_sigkill_worker_mid_job_resumes_and_matches_an_uninterrupted_run(
    tmp_path, redis_server, pg_cluster, procs,  # noqa: ANN001
) -> None:
    backend = chaos_backend(tmp_path, redis_server, pg_cluster)
    stack = ChaosStack(backend, procs)
    spec = long_spec()
    jid = stack.submit(spec)["id"]
    wait_for(lambda: _checkpoints(backend.db_url, jid), 120, "a first checkpoint")
    first_ckpt = _checkpoints(backend.db_url, jid)[-1]
    stack.wait_step(jid, first_ckpt + 5)
    Procs.kill(stack.worker, signal.SIGKILL)  # the worker and its pool child
    killed_at = stack.job(jid)
    assert killed_at["status"] == "running", f"the job ended before the kill: {killed_at}"
    assert killed_at["attempts"] == 1
    import time

    killed = time.monotonic()
    stack.start_worker()
    job = stack.wait_status(jid, TERMINAL, timeout=240)
    print(f"worker SIGKILLed at step {killed_at['progress']['step']}: job done "
          f"{time.monotonic() - killed:.1f} s later, resumed at step "
          f"{job['progress']['resume_step']}, attempts {job['attempts']}")
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 2
    assert job["progress"]["resume_step"] >= first_ckpt > 0  # resumed, not restarted
    with session_scope(backend.db_url) as s:
        rows = s.execute(select(Metric.key, Metric.step, Metric.value)
                         .where(Metric.job_id == uuid.UUID(jid))).all()
        row = s.get(Job, uuid.UUID(jid))
    got: dict[tuple[str, int], float | None] = {}
    for key, step, value in rows:
        assert (key, step) not in got, f"({key}, {step}) written twice"
        got[(key, step)] = value
    reference = _reference(spec, tmp_path)
    timed = {ks for ks in got if ks[0].endswith(UNTIMED)}
    assert set(got) - timed == set(reference), "points lost or extra"
    diff = [(ks, got[ks], reference[ks]) for ks in reference if got[ks] != reference[ks]]
    assert not diff, f"{len(diff)} values differ from an uninterrupted run, e.g. {diff[:3]}"
    assert "worker lost" in (row.error or "") or row.error is None
