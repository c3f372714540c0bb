"""No absolute server paths in what users read: job.error written by a real worker run, the
reasons the engine gives (a checkpoint path, a traceback), and API error messages."""

from __future__ import annotations

import traceback
import uuid

from fastapi.testclient import TestClient

from service.core.redact import without_server_paths
from service.db import jobs as jobs_db
from service.db.models import Job
from service.db.session import session_scope
from tests.conftest import tiny_spec


def test_a_failed_jobs_error_names_its_dataset_relative_to_the_root(backend) -> None:  # noqa: ANN001
    from worker.runner import run_job

    settings = backend.settings(dataset_root=str(backend.data_dir / "datasets"))
    folder = settings.datasets / "mine"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "broken.npz").write_bytes(b"not an npz archive")
    spec = tiny_spec(epochs=1)
    spec["dataset"] = {"name": "npz", "path": str(folder / "broken.npz")}
    with session_scope(settings.db_url) as s:
        jid = jobs_db.create_job(s, settings, spec, owner="paths", device="cpu").id
    assert run_job(str(jid), settings) == "failed"
    with session_scope(settings.db_url) as s:
        error = s.get(Job, jid).error
    assert "mine/broken.npz" in error
    assert str(settings.datasets) not in error and str(backend.data_dir) not in error


def test_checkpoint_paths_and_tracebacks_lose_their_server_prefix(sqlite_backend) -> None:  # noqa: ANN001
    settings = sqlite_backend.settings()
    jid = uuid.uuid4()
    ckpt = settings.artifacts / str(jid) / "checkpoints" / "step-000120.safetensors"
    text = f"non-finite loss at step 130; last good checkpoint: {ckpt}"
    assert without_server_paths(text, settings, jid) == \
        "non-finite loss at step 130; last good checkpoint: checkpoints/step-000120.safetensors"
    assert without_server_paths(text, settings) == \
        f"non-finite loss at step 130; last good checkpoint: {jid}/checkpoints/" \
        "step-000120.safetensors"
    try:
        import vae_engine.spec as spec_module

        spec_module.parse_spec({"model": {"latent_dim": "x"}})
    except Exception:  # noqa: BLE001
        tb = traceback.format_exc()
    import vae_engine

    code_root = str(__import__("pathlib").Path(vae_engine.__file__).resolve().parents[1])
    assert code_root in tb
    clean = without_server_paths(tb, settings)
    assert code_root not in clean and 'File "vae_engine/spec/loading.py"' in clean
    assert "site-packages/" not in clean


def test_api_messages_do_not_show_the_dataset_root(backend) -> None:  # noqa: ANN001
    from service.main import create_app

    settings = backend.settings(reaper_enabled=False,
                                dataset_root=str(backend.data_dir / "datasets"))
    spec = tiny_spec()
    spec["dataset"] = {"name": "npz", "path": "/etc/passwd.npz"}
    with TestClient(create_app(settings), headers=backend.auth) as c:
        r = c.post("/api/v1/jobs", json={"spec": spec})
        assert r.status_code == 422
        assert str(settings.datasets) not in r.text and "VAELAB_DATASET_ROOT" in r.text
        spec["dataset"]["path"] = "../outside.npz"
        r = c.post("/api/v1/jobs", json={"spec": spec})
        assert r.status_code == 422 and str(settings.datasets) not in r.text


def test_a_checkpoint_names_the_users_dataset_not_the_workers_descriptor(backend) -> None:  # noqa: ANN001
    """The worker reads an npz through the descriptor it opened and verified
    (``/proc/self/fd/N``); the spec it stores in checkpoints, which a resumed attempt (with
    another descriptor number) compares against, names the user's file."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sqlalchemy import select

    from service.core.inputs import checksums
    from service.db.models import Artifact
    from vae_engine.checkpoint import read_checkpoint
    from worker.runner import run_job

    settings = backend.settings(dataset_root=str(backend.data_dir / "datasets"))
    folder = settings.datasets / "mine"
    folder.mkdir(parents=True, exist_ok=True)
    x = (load_digits().images * (255 / 16)).astype(np.uint8)
    np.savez(folder / "digits.npz", x_train=x[:128], x_test=x[128:192])
    spec = tiny_spec(epochs=2, eval_every_epochs=0, checkpoint_every_epochs=1)
    spec["dataset"] = {"name": "npz", "path": str(folder / "digits.npz")}
    with session_scope(settings.db_url) as s:
        jid = jobs_db.create_job(s, settings, spec, owner="paths", device="cpu",
                                 input_sha256=checksums(spec, settings.datasets)).id
    assert run_job(str(jid), settings) == "succeeded"
    with session_scope(settings.db_url) as s:
        paths = s.scalars(select(Artifact.path).where(
            Artifact.job_id == jid, Artifact.kind == "checkpoint")).all()
    assert paths
    for path in paths:
        _, meta = read_checkpoint(str(settings.artifacts / path))
        assert meta["spec"]["dataset"]["path"] == str(folder / "digits.npz"), path
