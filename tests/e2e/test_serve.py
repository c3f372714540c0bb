"""The embedded default: `vaelab serve` (SQLite, server-less broker, its own worker)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT, Procs, free_port, long_spec, tiny_spec, wait_for, wait_http


def _serve(procs: Procs, data_dir, port: int, *extra: str):  # noqa: ANN001, ANN202
    env = {k: "" for k in ("VAELAB_DATABASE_URL", "VAELAB_BROKER_URL", "VAELAB_ARTIFACT_ROOT")}
    env |= {"VAELAB_HEARTBEAT_INTERVAL_S": "0.5", "VAELAB_CANCEL_POLL_S": "0.2",
            "VAELAB_AUTO_QUEUE": "cpu", "VAELAB_DATA_DIR": ""}
    proc = procs.start(["serve", "--port", str(port), "--data-dir", str(data_dir), *extra],
                       env, "serve")
    wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


AUTH: dict[str, str] = {}  # the first admin's header, read from <data dir>/admin.token


def _job(url: str, jid: str) -> dict:
    return httpx.get(f"{url}/api/v1/jobs/{jid}", timeout=10, headers=AUTH).json()


def _first_admin(data: Path, url: str, log: str) -> None:
    """The first serve made an admin, wrote its token 0600, printed a sign-in link; the CLI
    run from the folder that holds ``vaelab-data`` finds the token with no flags."""
    token_file = data / "admin.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    AUTH["Authorization"] = f"Bearer {token}"
    assert f"{url}/login?token={token}" in log
    assert httpx.get(f"{url}/api/v1/jobs", timeout=10).status_code == 401
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAELAB_")}
    env |= {"VAELAB_API_URL": url, "PYTHONPATH": str(ROOT),
            "XDG_CONFIG_HOME": str(data.parent / "no-config")}
    out = subprocess.run([sys.executable, "-m", "service.cli", "jobs"], cwd=data.parent,
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "owner" in out.stdout  # the table's header: the API answered, not a 401


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_serve_restart_runs_the_queued_job_and_ctrl_c_requeues(procs: Procs, tmp_path) -> None:  # noqa: ANN001
    data = tmp_path / "vaelab-data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first = _serve(procs, data, port, "--no-worker")
    _first_admin(data, url, wait_for(lambda: "login?token=" in (t := open(first.log_path).read())
                                     and t, 10, "the sign-in link"))
    jid = httpx.post(f"{url}/api/v1/jobs", json={"spec": tiny_spec(epochs=1)},
                     timeout=10, headers=AUTH).json()["id"]
    assert _job(url, jid)["status"] == "queued"
    first.send_signal(signal.SIGINT)  # Ctrl-C
    assert first.wait(timeout=30) == 0
    log = open(first.log_path).read()
    assert f"API on {url}" in log and str(data) in log
    assert (data / "vaelab.db").exists()
    # no worker, no free slot: the dispatcher sent nothing (the broker carries only released
    # jobs), so the broker's file does not exist yet
    assert not (data / "broker.db").exists()

    second = _serve(procs, data, port)
    done = wait_for(lambda: (j := _job(url, jid))["status"] in ("succeeded", "failed") and j,
                    180, "the queued job to run after the restart")
    assert done["status"] == "succeeded", done["error"]
    assert (data / "broker.db").exists()

    # Ctrl-C with a job running: both processes stop; the job checkpoints and is requeued
    long_id = httpx.post(f"{url}/api/v1/jobs", json={"spec": long_spec()},
                         timeout=10, headers=AUTH).json()["id"]
    wait_for(lambda: _job(url, long_id)["progress"]["step"] >= 10, 120, "the long job to run")
    second.send_signal(signal.SIGINT)
    assert second.wait(timeout=60) == 0
    log = open(second.log_path).read()
    assert "stopped" in log
    assert "Traceback" not in log  # a clean Ctrl-C: no Celery Reject traceback
    assert "checkpoints its job and gives it back" in log
    assert "ERROR" not in log  # no pool child died of a signal
    worker_pid = int(log.split("worker pid ")[1].split()[0])
    time.sleep(0.5)
    assert not _group_alive(worker_pid)  # the worker and its pool child are gone

    third = _serve(procs, data, port)
    job = _job(url, long_id)
    assert job["status"] in ("queued", "running")
    assert job["progress"]["step"] >= 10  # the checkpoint written on Ctrl-C is kept
    wait_for(lambda: _job(url, long_id)["attempts"] >= 2, 60, "the requeued job to resume")
    resumed = wait_for(lambda: (j := _job(url, long_id))["progress"]["resume_step"] and j,
                       60, "a resume step")
    assert resumed["progress"]["resume_step"] >= 10
    httpx.post(f"{url}/api/v1/jobs/{long_id}/cancel", timeout=10, headers=AUTH)
    assert wait_for(lambda: _job(url, long_id)["status"] == "cancelled", 60, "cancel")
    third.send_signal(signal.SIGINT)
    assert third.wait(timeout=60) == 0
    assert "ERROR" not in open(third.log_path).read()  # an idle pool child closes cleanly
