"""POST /api/v1/datasets over HTTP (TestClient, both backends): a valid .npz is stored with
its sha256 and owner, shown, named by a spec, and protected from deletion while a job waits
on it; every kind of invalid upload is refused with 4xx naming the cause."""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import tiny_spec


@pytest.fixture(scope="module")
def client(backend):  # noqa: ANN001, ANN201
    from service.main import create_app

    settings = backend.settings(reaper_enabled=False, dataset_max_bytes=200_000)
    with TestClient(create_app(settings), headers=backend.auth) as c:
        c.backend = backend
        c.settings = settings
        yield c


def npz(**arrays) -> bytes:  # noqa: ANN003
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _good(**extra) -> bytes:  # noqa: ANN003
    rng = np.random.default_rng(0)
    return npz(x_train=rng.integers(0, 256, (40, 8, 8), dtype=np.uint8),
               x_test=rng.integers(0, 256, (10, 8, 8), dtype=np.uint8), **extra)


def upload(client, body: bytes, name: str | None = None, owner: str = "uma"):  # noqa: ANN001, ANN201
    return client.post("/api/v1/datasets", params={"name": name or uuid.uuid4().hex[:12]},
                       content=body, headers={**client.backend.auth_as(owner),
                                              "Content-Type": "application/octet-stream"})


def test_a_valid_upload_is_stored_shown_and_used_by_name(client) -> None:  # noqa: ANN001
    body = _good(y_train=np.arange(40) % 3, y_test=np.arange(10) % 3)
    r = upload(client, body, name="blobs-1")
    assert r.status_code == 201, r.text
    ds = r.json()
    assert ds["name"] == "blobs-1" and ds["owner"] == "uma"
    assert ds["sha256"] == hashlib.sha256(body).hexdigest() and ds["bytes"] == len(body)
    assert (ds["shape"], ds["dtype"]) == ([1, 8, 8], "uint8")
    assert (ds["train_examples"], ds["test_examples"], ds["factors"]) == (40, 10, ["y"])
    stored = list((client.settings.datasets / "uploads").glob("*.npz"))
    assert any(p.read_bytes() == body for p in stored)
    assert not list((client.settings.datasets / "uploads").glob(".incoming-*"))
    assert client.get(f"/api/v1/datasets/{ds['id'][:6]}").json()["name"] == "blobs-1"
    assert "blobs-1" in {d["name"] for d in client.get("/api/v1/datasets").json()["items"]}
    assert upload(client, body, name="blobs-1").status_code == 409  # the name is taken

    spec = tiny_spec()
    spec["dataset"] = {"name": "npz", "path": "blobs-1"}
    job = client.post("/api/v1/jobs", json={"spec": spec})
    assert job.status_code == 201, job.text
    assert job.json()["spec"]["dataset"]["path"].endswith(f"{ds['id']}.npz")
    assert client.get("/api/v1/datasets/blobs-1").json()["jobs"] == {"queued": 1}
    r = client.delete("/api/v1/datasets/blobs-1")
    assert r.status_code == 409 and "waiting or running" in r.json()["detail"]
    assert client.post(f"/api/v1/jobs/{job.json()['id']}/cancel").status_code == 200
    assert client.delete("/api/v1/datasets/blobs-1").status_code == 204
    assert client.get("/api/v1/datasets/blobs-1").status_code == 404
    assert not any(p.exists() and p.read_bytes() == body for p in stored)


def _pickled() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x_train=np.array([object(), 1], dtype=object)[:1].repeat(4),
             x_test=np.zeros((4, 8, 8), np.uint8))
    return buf.getvalue()


def _zip_without_arrays() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hello")
    return buf.getvalue()


x8 = np.zeros((5, 8, 8), np.uint8)
INVALID = {
    "not a zip": (b"\x00\x01 definitely not an npz" * 10, "not an .npz archive"),
    "no arrays": (_zip_without_arrays(), "has no x_train or x_test"),
    "pickled objects": (_pickled(), "pickled"),
    "2-d images": (npz(x_train=np.zeros((5, 64), np.uint8), x_test=x8), "x_train has 2 "),
    "channels last": (npz(x_train=np.zeros((5, 8, 8, 3), np.uint8),
                          x_test=np.zeros((5, 8, 8, 3), np.uint8)), "channels-last"),
    "int64 pixels": (npz(x_train=np.zeros((5, 8, 8), np.int64), x_test=x8), "dtype int64"),
    "out of range": (npz(x_train=np.full((5, 8, 8), 3.0), x_test=x8), "must lie in [0, 1]"),
    "NaN": (npz(x_train=np.full((5, 8, 8), np.nan), x_test=x8), "NaN"),
    "one factor split": (npz(x_train=x8, x_test=x8, y_train=np.zeros(5)), "give both"),
    "factor rows": (npz(x_train=x8, x_test=x8, y_train=np.zeros(4), y_test=np.zeros(5)),
                    "4 rows but there are 5 images"),
    "train/test shapes": (npz(x_train=x8, x_test=np.zeros((5, 9, 9), np.uint8)),
                          "differ in height/width"),
    "empty": (b"", "empty"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_an_invalid_upload_is_422_naming_the_cause(client, case: str) -> None:  # noqa: ANN001
    body, cause = INVALID[case]
    before = set((client.settings.datasets / "uploads").glob("*"))
    r = upload(client, body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail[0]["field"] == "body" and cause in detail[0]["message"], detail
    assert set((client.settings.datasets / "uploads").glob("*")) == before  # nothing kept


def test_an_upload_over_the_limit_is_413_and_bad_names_are_422(client) -> None:  # noqa: ANN001
    big = npz(x_train=np.zeros((4000, 8, 8), np.uint8), x_test=x8)
    assert len(big) > 200_000
    r = upload(client, big)
    assert r.status_code == 413 and "limit" in r.json()["detail"]

    def chunks():  # noqa: ANN202 - no Content-Length: the streamed count decides
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    r = client.post("/api/v1/datasets", params={"name": "chunked"}, content=chunks())
    assert r.status_code == 413
    assert not list((client.settings.datasets / "uploads").glob(".incoming-*"))
    for bad in ("../up", "a b", "-x", "x" * 101):
        r = upload(client, _good(), name=bad)
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "name", bad
