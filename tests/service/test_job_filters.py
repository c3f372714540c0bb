"""``GET /api/v1/jobs``: the dashboard's filters on spec fields, sorting, ``active``, and the
summary's spec labels and sweep parameters (both backends; no worker: jobs stay queued)."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from tests.conftest import tiny_spec


@pytest.fixture(scope="module")
def client(backend):  # noqa: ANN001, ANN201
    from service.main import create_app

    with TestClient(create_app(backend.settings(reaper_enabled=False)),
                    headers=backend.auth) as c:
        yield c


@pytest.fixture(scope="module")
def made(client):  # noqa: ANN001, ANN201
    tag = f"f{uuid.uuid4().hex[:8]}"
    gauss = tiny_spec() | {"likelihood": {"kind": "gaussian"}}
    capacity = tiny_spec() | {"kl": {"schedule": {"kind": "capacity", "c_max": 5}}}
    ids = [client.post("/api/v1/jobs", json={"spec": s, "tags": [tag], "priority": p}).json()["id"]
           for p, s in enumerate([tiny_spec(), gauss, capacity])]
    return tag, ids


def _ids(client, **params) -> list[str]:  # noqa: ANN001, ANN003
    r = client.get("/api/v1/jobs", params=params)
    assert r.status_code == 200, r.text
    return [j["id"] for j in r.json()["items"]]


def test_filters_on_spec_fields(client, made) -> None:  # noqa: ANN001
    tag, (plain, gauss, capacity) = made
    assert _ids(client, tag=tag, likelihood="gaussian") == [gauss]
    assert set(_ids(client, tag=tag, likelihood="bernoulli")) == {plain, capacity}
    assert _ids(client, tag=tag, kl="capacity") == [capacity]
    assert len(_ids(client, tag=tag, dataset="digits", arch="mlp")) == 3
    assert _ids(client, tag=tag, dataset="nope") == []


def test_sort_and_active(client, made) -> None:  # noqa: ANN001
    tag, ids = made
    assert _ids(client, tag=tag, sort="priority") == ids
    assert _ids(client, tag=tag, sort="-priority") == ids[::-1]
    assert set(_ids(client, tag=tag, active=True)) == set(ids)
    assert client.get("/api/v1/jobs", params={"sort": "spec"}).status_code == 422


def test_summary_carries_the_spec_labels(client, made) -> None:  # noqa: ANN001
    tag, (_, gauss, _) = made
    item = client.get("/api/v1/jobs", params={"tag": tag, "likelihood": "gaussian"}
                      ).json()["items"][0]
    assert item["id"] == gauss
    assert (item["dataset"], item["arch"], item["likelihood"], item["kl"]) == (
        "digits", "mlp", "gaussian", "constant")
    assert item["sweep_params"] is None


def test_ids_and_with_spec(client, made) -> None:  # noqa: ANN001
    _, ids = made
    r = client.get("/api/v1/jobs", params={"ids": f"{ids[0]},{ids[2]}", "with_spec": True})
    assert r.status_code == 200
    items = r.json()["items"]
    assert {j["id"] for j in items} == {ids[0], ids[2]}
    assert all(j["spec"]["dataset"]["name"] == "digits" for j in items)
    assert client.get("/api/v1/jobs", params={"ids": ids[0]}).json()["items"][0]["spec"] is None
    assert client.get("/api/v1/jobs", params={"ids": "nope"}).status_code == 422
