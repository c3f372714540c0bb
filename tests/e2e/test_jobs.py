"""Over real HTTP (uvicorn subprocess) with a real Celery worker process, on both backends:
success with metrics, cancel, watch across an API restart. (SIGKILL of the worker mid-job
is tests/chaos/test_worker_kill.py.)"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from service.db.models import Artifact, Metric
from service.db.session import session_scope
from tests.conftest import ROOT, Procs, long_spec, tiny_spec, wait_for

TERMINAL = {"succeeded", "failed", "cancelled"}


class Stack:
    def __init__(self, backend, procs: Procs):  # noqa: ANN001
        self.backend, self.procs = backend, procs
        self.url = procs.api(backend)
        self.worker = procs.worker(backend)
        self.http = httpx.Client(base_url=self.url, timeout=30,
                                 headers=backend.auth_as("e2e"))

    def cli_env(self) -> dict[str, str]:
        """The CLI's environment: the e2e user's token."""
        return {**os.environ, "VAELAB_TOKEN": self.backend.tokens["e2e"]}

    def submit(self, spec: dict, **body) -> dict:  # noqa: ANN003
        r = self.http.post("/api/v1/jobs", json={"spec": spec, **body})
        assert r.status_code == 201, r.text
        return r.json()

    def job(self, jid: str) -> dict:
        return self.http.get(f"/api/v1/jobs/{jid}").json()

    def wait_status(self, jid: str, statuses: set[str], timeout: float = 180) -> dict:
        return wait_for(lambda: (j := self.job(jid))["status"] in statuses and j, timeout,
                        f"job {jid} to reach {statuses}")

    def artifacts(self, jid: str, kind: str) -> list[Artifact]:
        with session_scope(self.backend.db_url) as s:
            return list(s.scalars(select(Artifact).where(
                Artifact.job_id == uuid.UUID(jid), Artifact.kind == kind)
                .order_by(Artifact.step)))


@pytest.fixture(scope="module")
def stack(backend, tmp_path_factory):  # noqa: ANN001, ANN201
    procs = Procs(tmp_path_factory.mktemp("e2e-procs"))
    try:
        yield Stack(backend, procs)
    finally:
        procs.close()


def _cli(stack: Stack, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args, "--url", stack.url], cwd=ROOT,
        capture_output=True, text=True, timeout=timeout, env=stack.cli_env(),
    )


def test_submit_watch_succeeds_with_metrics_and_artifacts(stack: Stack, tmp_path) -> None:  # noqa: ANN001
    import json

    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(tiny_spec()))
    out = _cli(stack, "submit", str(spec_file), "--watch", "--device", "cpu", "--tag", "e2e")
    assert out.returncode == 0, out.stdout + out.stderr
    jid = out.stdout.split()[1]
    assert "succeeded at step 48/48" in out.stdout
    job = stack.job(jid)
    assert job["status"] == "succeeded"
    assert job["progress"] == {"step": 48, "total_steps": 48, "fraction": 1.0,
                               "resume_step": 0, "eta_seconds": 0.0,
                               "eta_includes_evals": None}
    assert job["summary"]["elbo"] < 0 and "iwae" in job["summary"]
    # the engine's warning (Bernoulli on grey-level digits) reaches the job and the watcher
    assert job["warnings"] and "warning: " + job["warnings"][0][:30] in out.stdout
    assert job["latest_metrics"]["loss"]["step"] == 48
    # the metrics are in the database, one row per logged (key, step)
    with session_scope(stack.backend.db_url) as s:
        steps = s.scalars(select(Metric.step).where(
            Metric.job_id == uuid.UUID(jid), Metric.key == "loss").order_by(Metric.step)).all()
    assert steps == [5, 10, 15, 20, 25, 30, 35, 40, 45, 48]
    # ...and come back downsampled
    r = stack.http.get(f"/api/v1/jobs/{jid}/metrics",
                       params={"keys": "loss,eval/elbo", "max_points": 4})
    series = {s["key"]: s for s in r.json()["series"]}
    assert series["loss"]["points_in_range"] == 10 and series["loss"]["downsampled"]
    assert len(series["loss"]["steps"]) <= 4
    assert series["eval/elbo"]["steps"] == [24, 48]
    # checkpoints recorded with their size and hash
    ckpts = stack.artifacts(jid, "checkpoint")
    assert [a.step for a in ckpts] == [24, 48]
    data = (Path(stack.backend.env()["VAELAB_ARTIFACT_ROOT"]) / ckpts[-1].path).read_bytes()
    assert ckpts[-1].sha256 == hashlib.sha256(data).hexdigest() and ckpts[-1].bytes == len(data)
    assert stack.artifacts(jid, "samples")
    listing = _cli(stack, "jobs", "--tag", "e2e")
    assert jid[:8] in listing.stdout and "succeeded" in listing.stdout
    status = _cli(stack, "status", jid)
    assert "succeeded" in status.stdout


def test_cancel_a_running_job_ends_cancelled_with_a_checkpoint(stack: Stack) -> None:
    jid = stack.submit(long_spec(), resources={"device": "cpu"})["id"]
    wait_for(lambda: stack.job(jid)["progress"]["step"] >= 10, 120, "training to start")
    r = stack.http.post(f"/api/v1/jobs/{jid}/cancel")
    assert r.status_code == 200 and r.json()["cancel_requested"] is True
    job = stack.wait_status(jid, TERMINAL, timeout=60)
    assert job["status"] == "cancelled"
    assert job["progress"]["step"] < job["progress"]["total_steps"]
    ckpts = stack.artifacts(jid, "checkpoint")
    assert ckpts and ckpts[-1].step == job["progress"]["step"]
    root = Path(stack.backend.env()["VAELAB_ARTIFACT_ROOT"])
    assert (root / ckpts[-1].path).exists()


def test_watch_reattaches_and_survives_an_api_restart(stack: Stack, tmp_path) -> None:  # noqa: ANN001
    """`vaelab watch PREFIX` follows a job through a real restart of the API process on the
    same port: it says it is waiting, reconnects, and ends with the job's outcome."""
    from tests.conftest import free_port, wait_http

    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def start_api() -> subprocess.Popen:
        proc = stack.procs.start(["api", "--port", str(port)], stack.backend.env(), "api")
        wait_http(url + "/healthz", proc)
        return proc

    api = start_api()
    # 30 epochs: still training when the API is killed, however fast the machine
    jid = stack.submit(tiny_spec(epochs=30, eval_every_epochs=10),
                       resources={"device": "cpu"})["id"]
    watcher = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "watch", jid[:8], "--url", url], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=stack.cli_env())
    try:
        # the worker may first work through jobs other tests left queued
        wait_for(lambda: stack.job(jid)["progress"]["step"] >= 5, 300, "training to start")
        # the watcher is attached once the API has logged its event-stream request
        wait_for(lambda: f"/api/v1/jobs/{jid}/events" in Path(api.log_path).read_text(),
                 60, "the watcher to attach")
        running = stack.job(jid)
        assert running["progress"]["eta_seconds"] is not None
        Procs.kill(api)  # SIGKILL: the stream breaks mid-job
        assert stack.job(jid)["status"] == "running", "the job ended before the API was killed"
        time.sleep(2.0)
        api = start_api()
        out, _ = watcher.communicate(timeout=400)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 0, out
    assert "Traceback" not in out
    assert "waiting for the API" in out
    assert f"job {jid}: succeeded at step" in out
    assert stack.job(jid)["status"] == "succeeded"
