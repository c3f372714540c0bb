"""A pool child forked while the worker's parent holds an SQLite write transaction.

The defect (found by a chaos run, 1 in ~9 runs of the pool-child SIGTERM test): the fresh
child got "database is locked" on every claim for minutes. SQLite keeps its locks' bookkeeping
per process, keyed by the file; a fork copies it, the copy still says a connection of this
process holds the write lock, and that connection (owned by the parent's heartbeat thread,
which the child does not have) is never closed in the child. So every write the child tries
waits for a lock nobody will release.

The fix (``worker.slots._write``): the parent's writes and a fork exclude each other, so a
fork waits until the write has committed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.db import workers as workers_db
from service.db.session import session_scope
from tests.conftest import ROOT, make_backend
from tests.worker.fork_probe import HOLD_S


def _probe(tmp_path: Path, mode: str) -> tuple[float, str]:
    backend = make_backend("sqlite", tmp_path)
    with session_scope(backend.db_url) as s:
        workers_db.register(s, "parent", device_kind="cpu", slots=1)
    # a short busy timeout: a locked child gives up in 1 s
    env = {**os.environ, **backend.env(VAELAB_DB_STATEMENT_TIMEOUT_S="1"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "tests.worker.fork_probe", mode],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip().splitlines()[-1]
    fields = dict(kv.split("=", 1) for kv in line.split())
    return float(fields["fork_wait_s"]), fields["child"]


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="needs os.register_at_fork")
def test_a_fork_waits_for_the_parents_write_and_the_child_can_write(tmp_path) -> None:  # noqa: ANN001
    wait, child = _probe(tmp_path, "guarded")
    assert child == "ok"
    assert wait >= HOLD_S * 0.8, f"the fork did not wait for the write ({wait:.3f} s)"


def test_without_the_guard_the_child_is_locked_out(tmp_path) -> None:  # noqa: ANN001
    # the hazard the guard exists for, shown on the same code path with the guard left out
    wait, child = _probe(tmp_path, "unguarded")
    assert wait < HOLD_S * 0.5
    assert child == "locked"
