"""The spec budget at submit, both backends: over-budget jobs and sweep points are 422s
naming the field with the estimate and the limit, and nothing is recorded; the limits are
the deployment's (VAELAB_MAX_*)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import tiny_spec


@pytest.fixture(scope="module")
def client(backend):  # noqa: ANN001, ANN201
    from service.main import create_app

    with TestClient(create_app(backend.settings(reaper_enabled=False)),
                    headers=backend.auth) as c:
        yield c


def huge_model() -> dict:
    spec = tiny_spec()
    spec["dataset"] = {"name": "mnist5k"}
    spec["model"] = {"arch": "mlp", "hidden": [65536] * 8, "latent_dim": 4096}
    return spec


def detail(r) -> dict[str, str]:  # noqa: ANN001
    assert r.status_code == 422, r.text
    return {e["field"]: e["message"] for e in r.json()["detail"]}


def test_a_3e10_parameter_spec_is_refused_naming_model_hidden(client) -> None:  # noqa: ANN001
    before = client.get("/api/v1/jobs").json()["total"]
    problems = detail(client.post("/api/v1/jobs", json={"spec": huge_model()}))
    assert "parameters" in problems["spec.model.hidden"]
    assert "6.1e+10" in problems["spec.model.hidden"]
    assert "VAELAB_MAX_PARAMETERS" in problems["spec.model.hidden"]
    assert client.get("/api/v1/jobs").json()["total"] == before


def test_iwae_k_and_logged_points(client) -> None:  # noqa: ANN001
    spec = tiny_spec()
    spec["eval"].update(iwae_k=100_000, max_examples=1000)
    assert "VAELAB_MAX_IWAE_ELEMENTS" in detail(
        client.post("/api/v1/jobs", json={"spec": spec}))["spec.eval.iwae_k"]
    spec = tiny_spec(epochs=100_000, log_every=1)
    message = detail(client.post("/api/v1/jobs", json={"spec": spec}))["spec.train.log_every"]
    assert "train.epochs 100000" in message and "VAELAB_MAX_LOGGED_POINTS" in message


def test_every_point_of_a_sweep_is_checked(client) -> None:  # noqa: ANN001
    before = client.get("/api/v1/sweeps").json()["total"]
    r = client.post("/api/v1/sweeps", json={
        "base": tiny_spec(), "grid": {"train.epochs": [2, 100_000], "train.log_every": [5, 1]}})
    problems = detail(r)
    assert list(problems) == ["spec.train.log_every"]
    assert problems["spec.train.log_every"].startswith("point 3:")
    r = client.post("/api/v1/sweeps", json={
        "base": tiny_spec(), "overrides": [{"model.hidden": [32]},
                                           {"model.hidden": [65536] * 8,
                                            "model.latent_dim": 4096}]})
    assert detail(r)["spec.model.hidden"].startswith("point 1:")
    assert client.get("/api/v1/sweeps").json()["total"] == before


def test_the_limits_are_the_deployments(backend) -> None:  # noqa: ANN001
    from service.main import create_app

    settings = backend.settings(reaper_enabled=False, max_parameters=1000)
    with TestClient(create_app(settings), headers=backend.auth) as c:
        problems = detail(c.post("/api/v1/jobs", json={"spec": tiny_spec()}))
        assert "this deployment allows 1e+03" in problems["spec.model.hidden"]
    with TestClient(create_app(backend.settings(reaper_enabled=False)),
                    headers=backend.auth) as c:
        assert c.post("/api/v1/jobs", json={"spec": tiny_spec()}).status_code == 201
