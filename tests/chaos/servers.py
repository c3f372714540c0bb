"""Servers a chaos test owns: its own ``redis-server`` and its own PostgreSQL cluster, each
on a free port with its data in a temp folder, so stopping, restarting or freezing them
disturbs nothing else on the machine.

    RedisServer(tmp)      .url  redis://127.0.0.1:<port>/0     start() stop() restart(down_s)
    PostgresCluster(tmp)  .url  postgresql+psycopg://postgres@127.0.0.1:<port>/vaelab
                                start() stop() restart(down_s) freeze(seconds)

PostgreSQL refuses to run as root, so as root its commands run as the ``postgres`` user
(``runuser``), in a folder that user owns; ``initdb``/``pg_ctl`` come from
``pg_config --bindir``. ``freeze`` sends SIGSTOP to the postmaster and every backend and
SIGCONT ``seconds`` later (from a timer thread: the call returns at once), which is what a
stalled disk or a hung host looks like to a client: connections are accepted by the kernel
and then nothing answers.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, up: bool, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            is_up = s.connect_ex(("127.0.0.1", port)) == 0
        if is_up == up:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not {'up' if up else 'down'} after {timeout} s")


class RedisServer:
    """``redis-server`` with AOF on (``appendfsync always``: a restart keeps every
    acknowledged write, as a deployment's append-only Redis does)."""

    def __init__(self, tmp: Path):
        self.dir = Path(tmp) / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.log_path = self.dir / "redis.log"

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--logfile", str(self.log_path), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _wait_port(self.port, True, 20, f"redis on {self.port}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # redis saves the AOF and exits
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        _wait_port(self.port, False, 10, f"redis on {self.port}")

    def restart(self, down_s: float = 5.0) -> None:
        """Stop, stay down ``down_s`` seconds, start again on the same port (blocks)."""
        self.stop()
        time.sleep(down_s)
        self.start()


class PostgresCluster:
    """A throw-away PostgreSQL cluster (trust auth on 127.0.0.1) with a ``vaelab``
    database."""

    def __init__(self, tmp: Path):
        self.tmp = Path(tmp)
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/vaelab"
        self.bindir = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True,
                                          text=True, check=True).stdout.strip())
        self._as_root = os.geteuid() == 0
        # the cluster's own folder: as root, one the postgres user owns and can reach
        # (pytest's tmp folders are 0700 root)
        if self._as_root:
            self.home = Path(tempfile.mkdtemp(prefix="vaelab-pg-"))
            pw = pwd.getpwnam("postgres")
            os.chown(self.home, pw.pw_uid, pw.pw_gid)
        else:
            self.home = self.tmp / "pg"
            self.home.mkdir(parents=True, exist_ok=True)
        self.data = self.home / "data"
        self.sockets = self.home  # the socket dir: inside the cluster's own folder
        self.log_path = self.home / "postgres.log"
        self._initialised = False
        self._thaw_timer: threading.Timer | None = None
        self._frozen: list[int] = []

    # ------------------------------------------------------------------ commands
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check,
                              cwd=str(self.home), timeout=120)

    def _init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync", "--no-instructions")
        self._initialised = True

    def start(self) -> None:
        first = not self._initialised
        if first:
            self._init()
        opts = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w",
                  "-t", "60", "-o", opts, "start")
        _wait_port(self.port, True, 30, f"postgres on {self.port}")
        if first:
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                      "vaelab")

    def stop(self) -> None:
        self.thaw()
        if not self._initialised or not (self.data / "postmaster.pid").exists():
            return
        # fast: roll back open transactions and disconnect clients, as a restart does
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop",
                  check=False)
        _wait_port(self.port, False, 30, f"postgres on {self.port}")

    def restart(self, down_s: float = 5.0) -> None:
        """Stop (fast), stay down ``down_s`` seconds, start again on the same port
        (blocks)."""
        self.stop()
        time.sleep(down_s)
        self.start()

    # ------------------------------------------------------------------ freezing
    def _pids(self) -> list[int]:
        head = (self.data / "postmaster.pid").read_text().splitlines()[0]
        postmaster = int(head)
        pids = [postmaster]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == postmaster:
                pids.append(int(entry.name))
        return pids

    def freeze(self, seconds: float) -> None:
        """SIGSTOP the server (postmaster and backends) now and SIGCONT it ``seconds``
        later from a timer thread; returns at once. :meth:`thaw` ends it early."""
        self.thaw()
        self._frozen = self._pids()
        for pid in self._frozen:
            os.kill(pid, signal.SIGSTOP)
        self._thaw_timer = threading.Timer(seconds, self.thaw)
        self._thaw_timer.daemon = True
        self._thaw_timer.start()

    def thaw(self) -> None:
        timer, self._thaw_timer = self._thaw_timer, None
        if timer is not None:
            timer.cancel()
        frozen, self._frozen = self._frozen, []
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        """Stop the server and remove its folder."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.home, ignore_errors=True)
