"""Shared fixtures for the service, worker and end-to-end tests.

Backends (``backend`` fixture, parametrised):
  * ``sqlite``   — the embedded default: SQLite + kombu's SQLAlchemy transport on SQLite.
  * ``postgres`` — PostgreSQL + Redis. A fresh database ``vaelab_test_<random>`` is created on
    the server named by ``VAELAB_TEST_POSTGRES_URL`` (default the local server) and dropped at
    the end; Redis (``VAELAB_TEST_REDIS_URL``) is isolated by per-session queue names. Skipped
    when the servers are unreachable, unless ``VAELAB_REQUIRE_SERVERS=1`` (CI), which fails.

Real processes: :class:`Procs` starts ``vaelab worker`` / ``vaelab api`` / ``vaelab serve``
subprocesses in their own process groups and kills every group at teardown.
"""

from __future__ import annotations

import copy
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PG_ADMIN_URL = os.environ.get(
    "VAELAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("VAELAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVERS = os.environ.get("VAELAB_REQUIRE_SERVERS") == "1"

# ~24 optimizer steps per epoch on digits; a second or so per epoch on one CPU core
TINY_SPEC = {
    "name": "tiny",
    "dataset": {"name": "digits"},
    "model": {"arch": "mlp", "latent_dim": 4, "hidden": [32]},
    "likelihood": {"kind": "bernoulli"},
    "optim": {"batch_size": 64},
    "train": {"epochs": 2, "log_every": 5, "eval_every_epochs": 1,
              "checkpoint_every_epochs": 1},
    "eval": {"iwae_k": 10, "max_examples": 100, "n_samples": 16},
}


def tiny_spec(**train: int) -> dict:
    spec = copy.deepcopy(TINY_SPEC)
    spec["train"].update(train)
    return spec


def long_spec(epochs: int = 60) -> dict:
    """Long enough to act on mid-job; evaluation only at the end keeps epochs short.

    A test that disturbs a job mid-run (a kill, a restart, a freeze) needs it still training
    when the disturbance lands. A step of this model takes 2-16 ms depending on the machine
    and its load (~450 steps/s measured in an idle worker here), and a test sees the job's
    progress only through polls 0.2 s apart, so the default 60 epochs (1,440 steps) leave
    seconds of margin even on a fast, idle machine. 4-8 epochs did not: a CI run saw a
    4-epoch job finish between the poll and the kill."""
    return tiny_spec(epochs=epochs, eval_every_epochs=0, checkpoint_every_epochs=1)


# ------------------------------------------------------------------------- users

ADMIN = "admin"  # the user every shared fixture (TestClient, Procs, the client) acts as


def make_user(db_url: str, name: str, role: str = "member") -> str:
    """A token of user ``name`` (created as ``role`` if missing), through service.db.users."""
    from service.db import users as users_db
    from service.db.session import session_scope

    with session_scope(db_url) as s:
        if users_db.get_user(s, name) is None:
            users_db.create_user(s, name, role=role)
        _, secret = users_db.create_token(s, name)
    return secret


# ------------------------------------------------------------------------- backends


@dataclass
class Backend:
    name: str
    db_url: str
    broker_url: str
    data_dir: Path
    queue_suffix: str
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    # the admin every fixture acts as (created once the database is migrated), and the
    # tokens of other users the tests made (name -> token)
    token: str = ""
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        """The admin's ``Authorization`` header: TestClient(app, headers=backend.auth)."""
        return {"Authorization": f"Bearer {self.token}"}

    def auth_as(self, name: str, role: str = "member") -> dict[str, str]:
        """The header of user ``name`` (created as ``role`` on first use, with a token)."""
        if name not in self.tokens:
            self.tokens[name] = make_user(self.db_url, name, role)
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def env(self, **extra: str) -> dict[str, str]:
        """VAELAB_* settings for processes of this backend (short timers for tests)."""
        env = {
            "VAELAB_ENV": "dev",
            "VAELAB_DATA_DIR": str(self.data_dir),
            "VAELAB_DATABASE_URL": self.db_url,
            "VAELAB_BROKER_URL": self.broker_url,
            "VAELAB_ARTIFACT_ROOT": str(self.data_dir / "artifacts"),
            "VAELAB_GPU_QUEUE": f"gpu{self.queue_suffix}",
            "VAELAB_CPU_QUEUE": f"cpu{self.queue_suffix}",
            "VAELAB_AUTO_QUEUE": "cpu",
            "VAELAB_HEARTBEAT_INTERVAL_S": "0.5",
            "VAELAB_CANCEL_POLL_S": "0.2",
            "VAELAB_REAPER_STALE_AFTER_S": "6",
            "VAELAB_REAPER_INTERVAL_S": "1",
            "VAELAB_MAX_ATTEMPTS": "3",
            "VAELAB_METRIC_BATCH_SECONDS": "0.5",
            "VAELAB_VISIBILITY_TIMEOUT_S": "3600",
            "VAELAB_TOKEN": self.token,
        }
        env.update(extra)
        return env

    def settings(self, **overrides):  # noqa: ANN201
        from service.core.config import Settings

        values = {k.removeprefix("VAELAB_").lower(): v for k, v in self.env().items()}
        values.update(overrides)
        return Settings(**values)


def _pg_reachable() -> bool:
    try:
        import psycopg
        from sqlalchemy.engine import make_url

        u = make_url(PG_ADMIN_URL)
        psycopg.connect(host=u.host, port=u.port or 5432, user=u.username,
                        password=u.password, dbname=u.database, connect_timeout=3).close()
        import redis

        redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001
        return False


def _make_postgres(tmp: Path) -> Backend:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(PG_ADMIN_URL)
    name = f"vaelab_test_{uuid.uuid4().hex[:10]}"

    def connect():  # noqa: ANN202
        return psycopg.connect(host=admin.host, port=admin.port or 5432, user=admin.username,
                               password=admin.password, dbname=admin.database, autocommit=True)

    with connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.set(database=name).render_as_string(hide_password=False)
    suffix = f"_{uuid.uuid4().hex[:8]}"
    backend = Backend("postgres", url, REDIS_URL, tmp, suffix)

    def drop() -> None:
        from service.db.session import dispose_all

        dispose_all()
        with connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        import redis

        r = redis.Redis.from_url(REDIS_URL)
        for key in r.scan_iter(f"*{suffix}*"):
            r.delete(key)

    backend.cleanup.append(drop)
    return backend


def _make_sqlite(tmp: Path) -> Backend:
    return Backend("sqlite", f"sqlite:///{tmp / 'vaelab.db'}",
                   f"sqla+sqlite:///{tmp / 'broker.db'}", tmp, f"_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request, tmp_path_factory) -> Iterator[Backend]:  # noqa: ANN001
    """A migrated database and a broker, one per backend for the whole session."""
    b = make_backend(request.param, tmp_path_factory.mktemp(f"vaelab-{request.param}"))
    yield b
    for fn in b.cleanup:
        fn()


def make_backend(kind: str, tmp: Path) -> Backend:
    """A migrated database (``sqlite`` or ``postgres``: a fresh one on the test server) with
    its broker and the admin every fixture acts as; skips or fails (CI) without servers."""
    from service.db import migrate

    if kind == "postgres":
        if not _pg_reachable():
            msg = f"PostgreSQL/Redis unreachable ({PG_ADMIN_URL}, {REDIS_URL})"
            if REQUIRE_SERVERS:
                pytest.fail(msg)
            pytest.skip(msg)
        b = _make_postgres(tmp)
    else:
        b = _make_sqlite(tmp)
    migrate.upgrade(b.db_url)
    b.token = make_user(b.db_url, ADMIN, "admin")
    return b


@pytest.fixture(scope="session")
def sqlite_backend(tmp_path_factory) -> Iterator[Backend]:  # noqa: ANN001
    yield make_backend("sqlite", tmp_path_factory.mktemp("vaelab-embedded"))


# ------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Procs:
    """Subprocesses in their own process groups; all killed at teardown."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str], env: dict[str, str], name: str) -> subprocess.Popen:
        full_env = dict(os.environ)
        full_env.update(env)
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
        )
        log = (self.log_dir / f"{name}-{len(self.procs)}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", *args], env=full_env, cwd=str(self.log_dir),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        proc.log_path = log.name  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def worker(self, backend: Backend, **env: str) -> subprocess.Popen:
        queues = f"gpu{backend.queue_suffix},cpu{backend.queue_suffix}"
        return self.start(["worker", "--queues", queues, "--loglevel", "INFO"],
                          backend.env(**env), "worker")

    def api(self, backend: Backend, **env: str) -> str:
        port = free_port()
        proc = self.start(["api", "--port", str(port)], backend.env(**env), "api")
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz", proc)
        return url

    @staticmethod
    def kill(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGKILL:
            proc.wait(timeout=30)

    def close(self) -> None:
        for proc in self.procs:  # SIGTERM first: `vaelab serve` then stops its own worker
            if proc.poll() is None:
                self.kill(proc, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            if proc.poll() is None:
                self.kill(proc, signal.SIGKILL)
            else:  # the group may still hold a pool child
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            log = Path(proc.log_path).read_text()  # type: ignore[attr-defined]
            raise RuntimeError(f"process exited with {proc.returncode}:\n{log[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not up after {timeout} s")


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             interval: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def procs(tmp_path) -> Iterator[Procs]:  # noqa: ANN001
    p = Procs(tmp_path)
    yield p
    p.close()
