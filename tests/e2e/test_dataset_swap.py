"""A dataset file swapped after submit is refused by the worker (real API and worker
processes, SQLite): replaced by a symlink to a file outside ``VAELAB_DATASET_ROOT``, or its
contents changed, the job ends ``failed`` with a clear message and never trains."""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.core.inputs import InputChanged, open_confined
from service.db import migrate
from tests.conftest import ADMIN, Backend, Procs, make_user, tiny_spec, wait_for


def _npz(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    np.savez(buf, x_train=rng.integers(0, 256, (64, 8, 8), dtype=np.uint8),
             x_test=rng.integers(0, 256, (32, 8, 8), dtype=np.uint8))
    return buf.getvalue()


@pytest.fixture
def stack(tmp_path: Path, procs: Procs):  # noqa: ANN201
    backend = Backend("sqlite", f"sqlite:///{tmp_path / 'vaelab.db'}",
                      f"sqla+sqlite:///{tmp_path / 'broker.db'}", tmp_path,
                      f"_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(backend.db_url)
    backend.token = make_user(backend.db_url, ADMIN, "admin")
    root = tmp_path / "datasets"
    root.mkdir()
    env = {"VAELAB_DATASET_ROOT": str(root)}
    url = procs.api(backend, **env)
    return backend, env, root, httpx.Client(base_url=url, timeout=30, headers=backend.auth)


def _submit(http: httpx.Client, path: str) -> str:
    spec = tiny_spec(epochs=1)
    spec["dataset"] = {"name": "npz", "path": path}
    r = http.post("/api/v1/jobs", json={"spec": spec, "resources": {"device": "cpu"}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _finished(http: httpx.Client, jid: str) -> dict:
    return wait_for(lambda: (j := http.get(f"/api/v1/jobs/{jid}").json())["status"]
                    in ("succeeded", "failed", "cancelled") and j, 180, f"job {jid} to end")


def test_a_dataset_swapped_after_submit_is_refused(stack, procs, tmp_path) -> None:  # noqa: ANN001
    backend, env, root, http = stack
    (root / "ok.npz").write_bytes(_npz(0))
    (root / "linked.npz").write_bytes(_npz(1))
    (root / "edited.npz").write_bytes(_npz(2))
    outside = tmp_path / "secret.npz"
    outside.write_bytes(_npz(3))
    ok, linked, edited = (_submit(http, n) for n in ("ok.npz", "linked.npz", "edited.npz"))
    # after submit, before any worker opened them
    (root / "linked.npz").unlink()
    (root / "linked.npz").symlink_to(outside)
    (root / "edited.npz").write_bytes(_npz(4))
    procs.worker(backend, **env)
    assert _finished(http, ok)["status"] == "succeeded"
    job = _finished(http, linked)
    assert job["status"] == "failed"
    assert "input file refused" in job["error"] and "without following a link" in job["error"]
    assert job["progress"]["step"] == 0 and not job["latest_metrics"]  # never trained
    job = _finished(http, edited)
    assert job["status"] == "failed" and "changed after submit" in job["error"]
    assert job["progress"]["step"] == 0


def test_open_confined_follows_no_link_below_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f.npz").write_bytes(b"x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.npz").write_bytes(b"y")
    fd = open_confined(str(root / "sub" / "f.npz"), root)
    assert os.read(fd, 1) == b"x"
    os.close(fd)
    (root / "linkdir").symlink_to(outside)  # a directory link in the middle of the path
    with pytest.raises(InputChanged, match="without following a link"):
        open_confined(str(root / "linkdir" / "f.npz"), root)
    with pytest.raises(InputChanged, match="not inside"):
        open_confined(str(root / ".." / "outside" / "f.npz"), root)
    with pytest.raises(InputChanged, match="not a regular file"):
        open_confined(str(root / "sub"), root)
