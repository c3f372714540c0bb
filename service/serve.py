"""The embedded default: ``vaelab serve`` with no configuration.

SQLite database, artifacts and broker under ``./vaelab-data/``; the broker is kombu's
SQLAlchemy transport on its own SQLite file (transactional put/get, survives restarts, no
server). Migrates the database, puts jobs left running or released by a previous run back to
waiting, creates the first admin and its token file when there is no user
(:mod:`service.core.users`), prints a sign-in link for the dashboard, starts one worker
subprocess serving both device kinds (one slot; the API process's dispatcher releases jobs
to it, as in a lab deployment), runs the API on 127.0.0.1:8000, and on Ctrl-C stops the API
and then the worker (which checkpoints a running job, which then waits again).
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from service.core.config import Settings

log = logging.getLogger("vaelab.serve")

WORKER_STOP_TIMEOUT_S = 30.0


def _lock(data_dir: Path):  # noqa: ANN202
    data_dir.mkdir(parents=True, exist_ok=True)
    fh = (data_dir / "serve.lock").open("w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"vaelab serve: another server is using {data_dir}") from None
    return fh


def start_worker(settings: Settings) -> subprocess.Popen:
    from service.core.launcher import child_env, die_with_parent

    env = child_env({
        "VAELAB_DATA_DIR": str(settings.data_dir.resolve()),
        "VAELAB_DATABASE_URL": settings.db_url,
        "VAELAB_BROKER_URL": settings.broker,
        "VAELAB_ARTIFACT_ROOT": str(settings.artifacts),
    })
    queues = f"{settings.gpu_queue},{settings.cpu_queue}"
    cmd = [sys.executable, "-m", "service.cli", "worker", "--queues", queues,
           "--loglevel", "WARNING"]
    # its own session: the terminal's Ctrl-C reaches only us; we stop it in order
    return subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=die_with_parent)


def stop_worker(proc: subprocess.Popen, timeout: float = WORKER_STOP_TIMEOUT_S) -> None:
    if proc.poll() is not None:
        return
    try:
        # the worker's main process only, as docker stop does: it asks a busy pool child to
        # checkpoint its job (worker.shutdown) and closes an idle one itself
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning("worker did not stop in %.0f s; killing it", timeout)
    except ProcessLookupError:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group
    except ProcessLookupError:
        pass
    proc.wait()


class _Watchdog(threading.Thread):
    """Keeps one worker subprocess alive; restarts it if it dies on its own."""

    def __init__(self, settings: Settings):
        super().__init__(name="worker-watchdog", daemon=True)
        self.settings = settings
        self.proc = start_worker(settings)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(2.0):
            if self.proc.poll() is not None:
                log.warning("worker exited with %s; restarting it", self.proc.returncode)
                print(f"vaelab: worker exited ({self.proc.returncode}); restarting it",
                      flush=True)
                self.proc = start_worker(self.settings)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)
        stop_worker(self.proc)


def serve(host: str, port: int, data_dir: str | None, with_worker: bool = True) -> int:
    import uvicorn

    from service.core import jobs as jobops
    from service.core.users import ensure_local_admin, read_secret
    from service.db import migrate
    from service.db.session import session_scope
    from service.main import create_app

    # --data-dir wins over VAELAB_DATA_DIR; the worker child gets it in its environment
    # (start_worker), so nothing here changes this process's environment
    settings = Settings(data_dir=data_dir) if data_dir else Settings()
    settings.ensure_dirs()
    lock = _lock(settings.data_dir.resolve())
    migrate.upgrade(settings.db_url)
    admin = ensure_local_admin(settings)
    with session_scope(settings.db_url) as s:
        resent = jobops.requeue_unfinished(s, lambda _job: None)  # the dispatcher sends
    url = f"http://{host}:{port}"
    print(f"vaelab: API on {url} (docs {url}/docs)", flush=True)
    if admin:
        print(f"vaelab: created the admin user {admin}; its token is in "
              f"{settings.admin_token_file} (the CLI here uses it)", flush=True)
    token = read_secret(settings.admin_token_file)
    if token:
        print(f"vaelab: open the dashboard signed in: {url}/login?token={token}", flush=True)
    print(f"vaelab: data in {settings.data_dir.resolve()} (database {settings.db_url})",
          flush=True)
    if resent:
        print(f"vaelab: re-queued {len(resent)} unfinished job(s)", flush=True)
    watchdog = _Watchdog(settings) if with_worker else None
    if watchdog is not None:
        watchdog.start()
        print(f"vaelab: worker pid {watchdog.proc.pid}", flush=True)
    try:
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host=host, port=port,
                                               log_level="warning"))
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled
        pass
    finally:
        if watchdog is not None:
            print("vaelab: stopping the worker (a running job checkpoints and is requeued)",
                  flush=True)
            watchdog.stop()
        lock.close()
    print("vaelab: stopped", flush=True)
    return 0
