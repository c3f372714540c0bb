"""A client-side deadline for PostgreSQL calls, for a server that stops answering at all.

``statement_timeout`` is enforced by the server, and a frozen server (stalled disk, host
paused, SIGSTOP) enforces nothing: the kernel still accepts and acknowledges the bytes, so
TCP keepalives and ``tcp_user_timeout`` never fire and libpq waits forever. The watchdog is
one daemon thread holding deadlines; when one passes it shuts the connection's socket down,
libpq's read fails at once, psycopg raises ``OperationalError`` and SQLAlchemy drops the
connection from its pool.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(self, tick: float = 0.1):
        self.tick = tick
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[float, int]] = {}  # token -> (deadline, socket fd)
        self._fired: set[int] = set()
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None

    def arm(self, fd: int, seconds: float) -> int:
        """Shut socket ``fd`` down unless :meth:`disarm` is called within ``seconds``."""
        token = next(self._ids)
        with self._lock:
            self._armed[token] = (time.monotonic() + seconds, fd)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="vaelab-db-watchdog",
                                                daemon=True)
                self._thread.start()
        return token

    def disarm(self, token: int | None) -> bool:
        """True if the deadline had passed (the socket was shut down)."""
        if token is None:
            return False
        with self._lock:
            self._armed.pop(token, None)
            if token in self._fired:
                self._fired.discard(token)
                return True
        return False

    def _run(self) -> None:
        while True:
            time.sleep(self.tick)
            now = time.monotonic()
            with self._lock:
                due = [(t, fd) for t, (deadline, fd) in self._armed.items() if deadline <= now]
                for token, fd in due:
                    del self._armed[token]
                    self._fired.add(token)
                    _shut(fd)


def _shut(fd: int) -> None:
    # shutdown() acts on the socket itself, so a duplicate descriptor is enough and the
    # driver's own descriptor stays valid (it then reads EOF and reports the disconnect)
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
        log.warning("database did not answer in time: connection (fd %d) cut", fd)
    except OSError:
        pass
    finally:
        sock.close()


WATCHDOG = Watchdog()
