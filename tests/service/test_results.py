"""Per-job results over the API (TestClient, both backends): the rate-distortion summary,
checkpoints, sample grids, traversals, fresh samples, artifact listing and path safety.

The job is trained in-process by the engine through the worker's own SQL sink and artifact
store (real database, real files); no Celery worker is needed for these reads."""

from __future__ import annotations

import hashlib
import io
import math
import uuid

import pytest
from fastapi.testclient import TestClient

from service.db import jobs as jobs_db
from service.db.session import get_engine, session_scope
from tests.conftest import tiny_spec
from worker.artifacts import SqlArtifacts
from worker.sink import SqlMetricSink

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained(backend):  # noqa: ANN001, ANN201
    from service.main import create_app

    settings = backend.settings(reaper_enabled=False)
    app = create_app(settings)
    with TestClient(app, headers=backend.auth) as client:
        jid, lease, result = submit_and_train(client, settings, tiny_spec())
        with session_scope(settings.db_url) as s:
            jobs_db.finish(s, jid, lease, "succeeded", step=result.step,
                          summary=sink_summary(result.summary))
        yield client, str(jid), settings


def submit_and_train(client, settings, spec):  # noqa: ANN001, ANN201
    """Submit over HTTP, claim the job as a worker would and train it in this process with
    the worker's SQL sink and artifact store. Returns (job id, lease, TrainResult)."""
    from vae_engine import train
    from vae_engine.spec import parse_spec

    r = client.post("/api/v1/jobs", json={"spec": spec, "resources": {"device": "cpu"}})
    assert r.status_code == 201, r.text
    jid = uuid.UUID(r.json()["id"])
    engine = get_engine(settings.db_url)
    lease = str(uuid.uuid4())
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, lease, "test", 60)
    sink = SqlMetricSink(engine, jid, lease)
    result = train(parse_spec(r.json()["spec"]), sink,
                   SqlArtifacts(engine, settings.artifacts, jid), device="cpu")
    sink.flush()
    return jid, lease, result


def sink_summary(summary):  # noqa: ANN001, ANN201
    import json

    from vae_engine.io import dumps

    return json.loads(dumps(summary))


def test_rate_distortion_latest_and_by_step(trained) -> None:  # noqa: ANN001
    client, jid, _ = trained
    r = client.get(f"/api/v1/jobs/{jid}/rate-distortion")
    assert r.status_code == 200, r.text
    rd = r.json()
    assert rd["step"] == 48 and rd["evaluated_steps"] == [24, 48] and rd["final"] is True
    s = rd["summary"]
    assert rd["elbo"] == pytest.approx(-(rd["rate"] + rd["distortion"]), rel=1e-5)
    assert rd["iwae_k"] == 10 and rd["iwae"] is not None
    assert rd["active_units"]["count"] == s["active_units"]
    assert len(rd["active_units"]["values"]) == 4 and rd["active_units"]["threshold"] == 0.01
    assert rd["mutual_information"]["batch_size"] == s["mi_batch_size"] > 0
    mi = rd["mutual_information"]
    assert mi["upper_bound"] == pytest.approx(math.log(mi["batch_size"]))
    assert mi["saturated"] == (mi["value"] > 0.95 * mi["upper_bound"])
    assert rd["bound"] is s["bound"] and rd["bound_reason"] == s["bound_reason"]
    assert rd["evaluation"] == "final"
    assert len(rd["kl_per_unit"]) == 4 and rd["marginal_kl"] is not None
    assert rd["beta_effective"] == pytest.approx(1.0) and rd["scheme_state"] is not None
    assert [p["step"] for p in rd["trajectory"]] == [24, 48]
    steps = [p["step"] for p in rd["training_trajectory"]]
    assert steps[0] == 5 and steps[-1] == 48 and all(p["rate"] is not None
                                                     for p in rd["training_trajectory"])
    mid = client.get(f"/api/v1/jobs/{jid}/rate-distortion", params={"step": 24}).json()
    assert mid["step"] == 24 and mid["final"] is False and mid["evaluation"] == "intermediate"
    assert mid["rate"] == rd["trajectory"][0]["rate"]
    missing = client.get(f"/api/v1/jobs/{jid}/rate-distortion", params={"step": 7})
    assert missing.status_code == 404 and "24, 48" in missing.json()["detail"]


def test_no_evaluation_yet_is_404(trained) -> None:  # noqa: ANN001
    client, _, _ = trained
    r = client.post("/api/v1/jobs", json={"spec": tiny_spec()})
    jid = r.json()["id"]
    assert client.get(f"/api/v1/jobs/{jid}/rate-distortion").status_code == 404
    assert client.get(f"/api/v1/jobs/{jid}/checkpoints/latest").status_code == 404
    assert client.get(f"/api/v1/jobs/{uuid.uuid4()}/artifacts").status_code == 404


def test_checkpoint_list_and_download_reload(trained, tmp_path) -> None:  # noqa: ANN001
    from vae_engine import load_checkpoint

    client, jid, _ = trained
    cks = client.get(f"/api/v1/jobs/{jid}/checkpoints").json()
    assert [c["step"] for c in cks] == [24, 48]
    r = client.get(f"/api/v1/jobs/{jid}/checkpoints/latest")
    assert r.status_code == 200
    digest = hashlib.sha256(r.content).hexdigest()
    assert digest == cks[-1]["sha256"] == r.headers["x-vaelab-sha256"]
    assert "step_00000048.safetensors" in r.headers["content-disposition"]
    path = tmp_path / "ck.safetensors"
    path.write_bytes(r.content)
    ck = load_checkpoint(path)
    assert ck.step == 48 and ck.sample(4, seed=0).shape == (4, 1, 8, 8)
    first = client.get(f"/api/v1/jobs/{jid}/checkpoints/24")
    assert first.status_code == 200 and first.headers["x-vaelab-step"] == "24"
    assert client.get(f"/api/v1/jobs/{jid}/checkpoints/25").status_code == 404
    assert client.get(f"/api/v1/jobs/{jid}/checkpoints/abc").status_code == 422


def test_sample_grids_traversal_and_fresh_samples(trained) -> None:  # noqa: ANN001
    from PIL import Image

    client, jid, _ = trained
    for kind in ("prior", "recon", "traversal"):
        r = client.get(f"/api/v1/jobs/{jid}/samples", params={"kind": kind})
        assert r.status_code == 200, (kind, r.text)
        assert r.headers["content-type"] == "image/png" and r.content.startswith(PNG_MAGIC)
    old = client.get(f"/api/v1/jobs/{jid}/samples", params={"kind": "recon", "step": 24})
    assert old.status_code == 200 and old.headers["x-vaelab-step"] == "24"
    assert client.get(f"/api/v1/jobs/{jid}/samples", params={"kind": "bogus"}).status_code == 422
    body = {"n": 9, "temperature": 0.8, "seed": 3}
    a = client.post(f"/api/v1/jobs/{jid}/samples", json=body)
    b = client.post(f"/api/v1/jobs/{jid}/samples", json=body)
    assert a.status_code == 200 and a.content == b.content  # same seed, same image
    w, h = Image.open(io.BytesIO(a.content)).size
    assert w == h > 8 * 3
    bad = client.post(f"/api/v1/jobs/{jid}/samples", json={"n": 0})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "n"


def test_artifacts_listed_with_sizes_and_hashes(trained) -> None:  # noqa: ANN001
    client, jid, settings = trained
    listing = client.get(f"/api/v1/jobs/{jid}/artifacts").json()
    kinds = {a["kind"] for a in listing["items"]}
    assert {"checkpoint", "samples", "recon", "summary"} <= kinds
    assert listing["total_bytes"] == sum(a["bytes"] for a in listing["items"])
    for a in listing["items"]:
        data = (settings.artifacts / jid / a["path"]).read_bytes()
        assert len(data) == a["bytes"] and hashlib.sha256(data).hexdigest() == a["sha256"]
        got = client.get(a["url"])
        assert got.status_code == 200 and got.content == data


@pytest.mark.parametrize("path", [
    "../../etc/passwd", "..%2f..%2fetc%2fpasswd", "%2e%2e/%2e%2e/etc/passwd",
    "%252e%252e%252fetc%252fpasswd", "/etc/passwd", "%2fetc%2fpasswd",
    "checkpoints/../../x", "checkpoints/%2e%2e/%2e%2e/x", "..\\..\\x", "checkpoints//x",
    "C:%5cwindows", "summaries/summary.json%00.png",
])
def test_artifact_paths_never_escape_the_root(trained, path) -> None:  # noqa: ANN001
    client, jid, settings = trained
    secret = settings.artifacts.parent / "secret.txt"
    secret.write_text("top secret")
    r = client.get(f"/api/v1/jobs/{jid}/artifacts/{path}")
    assert r.status_code in (400, 404, 422), (path, r.status_code)  # 422: a NUL byte
    assert b"top secret" not in r.content and b"root:" not in r.content


def test_unsafe_path_checks() -> None:
    from service.artifact_paths import UnsafePath, check_relative

    for bad in ("..", "a/../b", "/abs", "a\\b", "a//b", "%2e%2e", "a/./b", "", "c:x", "a\x00"):
        with pytest.raises(UnsafePath):
            check_relative(bad)
    assert str(check_relative("checkpoints/step_1.safetensors")) == "checkpoints/step_1.safetensors"


def test_symlink_out_of_the_root_is_refused(tmp_path) -> None:  # noqa: ANN001
    from service.artifact_paths import UnsafePath, resolve_under

    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.txt").write_text("x")
    (root / "link").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(UnsafePath):
        resolve_under(root, "link")


def test_traversal_of_a_missing_or_outside_dataset_is_422_not_500(trained) -> None:  # noqa: ANN001
    """A job trained on an npz file that has since gone (or a checkpoint naming a file outside
    the dataset root): the traversal needs the test split, and says why it cannot have it."""
    import numpy as np


    client, _, settings = trained
    root = settings.datasets
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    name = f"d-{uuid.uuid4().hex[:6]}.npz"
    np.savez(root / name, x_train=rng.integers(0, 256, (64, 8, 8), dtype=np.uint8),
             x_test=rng.integers(0, 256, (16, 8, 8), dtype=np.uint8))
    spec = tiny_spec(epochs=1)
    spec["dataset"] = {"name": "npz", "path": name}
    spec["model"] = {"arch": "mlp", "latent_dim": 2, "hidden": [8]}
    jid, _, _ = submit_and_train(client, settings, spec)
    ok = client.get(f"/api/v1/jobs/{jid}/samples", params={"kind": "traversal"})
    assert ok.status_code == 200, ok.text
    (root / name).unlink()
    from service.core import inference

    inference.clear_caches()
    r = client.get(f"/api/v1/jobs/{jid}/samples", params={"kind": "traversal"})
    assert r.status_code == 422, r.text
    assert "not found" in r.text


def test_test_split_reads_no_npz_outside_the_dataset_root(tmp_path) -> None:  # noqa: ANN001
    from service.core.inference import BadInferenceInput, load_test_split
    from vae_engine.spec import NpzData

    for path in ("/etc/passwd", "../x.npz"):
        with pytest.raises(BadInferenceInput) as info:  # the API's 422, naming the field
            load_test_split(NpzData(path=path), tmp_path / "datasets")
        assert info.value.field == "spec.dataset.path"


def test_artifact_reads_in_the_db_layer(trained) -> None:  # noqa: ANN001
    """service.db.artifacts: the reads behind the routes, on the trained job's rows."""
    from service.db.artifacts import (
        CHECKPOINT,
        artifact_by_path,
        checkpoint_steps,
        job_artifacts,
        newest_artifact,
    )

    _, jid, settings = trained
    job_id = uuid.UUID(jid)
    with session_scope(settings.db_url) as s:
        rows = job_artifacts(s, job_id)
        assert [(a.kind, a.step) for a in rows] == sorted((a.kind, a.step) for a in rows)
        assert [a.step for a in job_artifacts(s, job_id, CHECKPOINT)] == [24, 48]
        assert checkpoint_steps(s, job_id) == [24, 48]
        assert newest_artifact(s, job_id, CHECKPOINT).step == 48
        assert newest_artifact(s, job_id, CHECKPOINT, 24).step == 24
        assert newest_artifact(s, job_id, CHECKPOINT, 25) is None
        assert newest_artifact(s, job_id, "samples").step == 48
        rel = rows[0].path.removeprefix(f"{jid}/")
        assert artifact_by_path(s, job_id, rel).id == rows[0].id
        assert artifact_by_path(s, job_id, "no/such.png") is None
        assert checkpoint_steps(s, uuid.uuid4()) == []


def test_no_checkpoint_step_404_names_the_steps(trained) -> None:  # noqa: ANN001
    client, jid, _ = trained
    r = client.get(f"/api/v1/jobs/{jid}/checkpoints/25")
    assert r.status_code == 404
    assert "steps: [24, 48]" in r.json()["detail"]
    r = client.post(f"/api/v1/jobs/{jid}/samples", json={"n": 4, "step": 25})
    assert r.status_code == 404


def test_busy_inference_is_503_with_retry_after(trained, monkeypatch) -> None:  # noqa: ANN001
    from service.core import inference

    client, jid, _ = trained
    monkeypatch.setattr(inference, "SLOT_WAIT_S", 0.01)
    taken = [inference.TORCH_SLOTS.acquire(timeout=5) for _ in range(2)]  # every slot
    try:
        r = client.post(f"/api/v1/jobs/{jid}/samples", json={"n": 4})
    finally:
        for _ in taken:
            inference.TORCH_SLOTS.release()
    assert r.status_code == 503
    assert r.headers["retry-after"] == "5"
    assert client.post(f"/api/v1/jobs/{jid}/samples", json={"n": 4}).status_code == 200
