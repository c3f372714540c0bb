"""Run by ``test_fork_guard.py`` in a fresh process: fork while a thread of this process holds
an open SQLite write transaction (a worker's slot heartbeat, as in the Celery parent), then
try a write in the child, as a fresh pool child does when it claims a job.

    python -m tests.worker.fork_probe guarded|unguarded

The database is ``VAELAB_DATABASE_URL`` (migrated, with a worker row named ``parent``).
Prints one line: ``fork_wait_s=<s> child=<ok|locked|error>``.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from service.core.config import get_settings
from service.db import workers as workers_db
from service.db.session import dispose_all, session_scope
from worker import slots

HOLD_S = 0.5  # how long the parent's write stays open after the fork is asked for


def _child(url: str) -> int:
    dispose_all(close=False)  # what a pool child does first (worker.tasks._child_init)
    try:
        with session_scope(url) as s:
            workers_db.register(s, "child", device_kind="cpu", slots=1)
    except Exception as exc:  # noqa: BLE001 - the verdict is printed by the parent
        return 3 if "database is locked" in str(exc) else 4
    return 0


def main(mode: str) -> None:
    url = get_settings().db_url
    scope = slots._write if mode == "guarded" else session_scope  # noqa: SLF001
    opened, done = threading.Event(), threading.Event()

    def heartbeat() -> None:
        with scope(url) as s:
            workers_db.beat(s, "parent")  # an UPDATE: the write transaction is open
            opened.set()
            time.sleep(HOLD_S)
        done.set()

    threading.Thread(target=heartbeat, daemon=True).start()
    opened.wait(10)
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os._exit(_child(url))
    fork_wait = time.monotonic() - t0
    _, status = os.waitpid(pid, 0)
    verdict = {0: "ok", 3: "locked", 4: "error"}.get(os.waitstatus_to_exitcode(status), "?")
    done.wait(10)
    print(f"fork_wait_s={fork_wait:.3f} child={verdict}")


if __name__ == "__main__":
    main(sys.argv[1])
