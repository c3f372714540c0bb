"""Bounds at the edge, in-process on both backends: bad input is a 4xx naming the field,
never a 500 (NUL bytes, integers past the column type, non-finite JSON numbers, non-ASCII
step digits); 422 bodies stay small; 413 names the limit; 405/OPTIONS list every method."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.conftest import tiny_spec


@pytest.fixture(scope="module")
def client(backend):  # noqa: ANN001, ANN201
    from service.main import create_app

    app = create_app(backend.settings(reaper_enabled=False))
    with TestClient(app, headers=backend.auth) as c:
        yield c


@pytest.fixture(scope="module")
def job_id(client) -> str:  # noqa: ANN001
    r = client.post("/api/v1/jobs", json={"spec": tiny_spec()})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def fields(r) -> set[str]:  # noqa: ANN001
    assert r.status_code == 422, r.text
    return {e["field"] for e in r.json()["detail"]}


@pytest.mark.parametrize("query,field", [
    ("owner=%00", "query.owner"), ("tag=%00", "query.tag"), ("tag=a%00b", "query.tag"),
    ("dataset=x%00", "query.dataset"), ("ids=%00", "query.ids"), ("sort=%00", "query.sort"),
    ("offset=9223372036854775808", "query.offset"), ("offset=-1", "query.offset"),
    ("limit=99999999999999999999", "query.limit"), ("limit=%D9%A3", "query.limit"),
])
def test_job_list_filters(client, query: str, field: str) -> None:  # noqa: ANN001
    assert field in fields(client.get(f"/api/v1/jobs?{query}"))


def test_the_largest_offset_is_served(client) -> None:  # noqa: ANN001
    r = client.get("/api/v1/jobs?offset=9223372036854775807")
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []


@pytest.mark.parametrize("suffix,field", [
    ("metrics?end_step=2147483648", "query.end_step"),
    ("metrics?start_step=99999999999", "query.start_step"),
    ("metrics?keys=%00", "query.keys"), ("metrics?keys=elbo,%00x", "query.keys"),
    ("rate-distortion?step=2147483648", "query.step"),
    ("samples?step=2147483648", "query.step"), ("samples?index=2147483648", "query.index"),
    ("checkpoints/%C2%B2", "step"), ("checkpoints/%D9%A3", "step"),
    ("checkpoints/99999999999", "step"), ("checkpoints/-1", "step"),
])
def test_job_routes(client, job_id: str, suffix: str, field: str) -> None:  # noqa: ANN001
    assert field in fields(client.get(f"/api/v1/jobs/{job_id}/{suffix}"))


def test_a_plain_ascii_step_still_finds_no_checkpoint_as_404(client, job_id) -> None:  # noqa: ANN001
    assert client.get(f"/api/v1/jobs/{job_id}/checkpoints/3").status_code == 404


@pytest.mark.parametrize("query,field", [
    ("end_step=2147483648", "query.end_step"), ("keys=%00", "query.keys"),
    ("start_step=-3", "query.start_step"),
])
def test_compare(client, job_id: str, query: str, field: str) -> None:  # noqa: ANN001
    assert field in fields(client.get(f"/api/v1/compare?jobs={job_id}&{query}"))


@pytest.mark.parametrize("url", ["/api/v1/sweeps?owner=%00", "/api/v1/datasets?owner=%00",
                                 "/api/v1/sweeps?offset=9223372036854775808",
                                 "/api/v1/datasets?offset=9223372036854775808",
                                 "/api/v1/jobs/%00abc"])
def test_other_lists_and_paths(client, url: str) -> None:  # noqa: ANN001
    assert client.get(url).status_code == 422


def post_raw(client, url: str, text: str):  # noqa: ANN001, ANN201
    return client.post(url, content=text.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize("constant", ["Infinity", "-Infinity", "NaN"])
def test_non_finite_numbers_in_a_spec(client, constant: str) -> None:  # noqa: ANN001
    spec = json.dumps(tiny_spec())[:-1] + f', "kl": {{"schedule": {{"kind": "constant", ' \
                                          f'"beta": {constant}}}}}}}'
    r = post_raw(client, "/api/v1/jobs", f'{{"spec": {spec}}}')
    assert fields(r) == {"spec.kl.schedule.beta"}
    assert constant in r.json()["detail"][0]["message"]


def test_a_number_that_overflows_to_infinity(client) -> None:  # noqa: ANN001
    spec = tiny_spec()
    spec["optim"]["lr"] = 0.5
    body = json.dumps({"spec": spec}).replace("0.5", "1e400")
    assert fields(post_raw(client, "/api/v1/jobs", body)) == {"spec.optim.lr"}


def test_non_finite_numbers_in_a_sweep_grid(client) -> None:  # noqa: ANN001
    body = json.dumps({"base": tiny_spec(), "grid": {"kl.schedule.beta": [1.0]}})
    r = post_raw(client, "/api/v1/sweeps", body.replace("[1.0]", "[1.0, NaN]"))
    assert fields(r) == {"grid.kl.schedule.beta.1"}


def test_nul_in_spec_and_sweep_names(client) -> None:  # noqa: ANN001
    spec = tiny_spec()
    spec["name"] = "a\x00b"
    assert fields(client.post("/api/v1/jobs", json={"spec": spec})) == {"spec.name"}
    spec = tiny_spec()
    spec["dataset"]["name"] = "\x00"
    assert fields(client.post("/api/v1/jobs", json={"spec": spec})) == {"spec.dataset.name"}
    r = client.post("/api/v1/sweeps", json={"name": "x\x00", "base": tiny_spec(),
                                            "grid": {"train.seed": [0]}})
    assert fields(r) == {"name"}
    r = client.post("/api/v1/jobs", json={"spec": tiny_spec(), "tags": ["\x00"]})
    assert fields(r) == {"tags.0"}


def test_integers_past_64_bits_in_a_body(client) -> None:  # noqa: ANN001
    spec = tiny_spec()
    spec["train"]["seed"] = 2**64
    assert fields(client.post("/api/v1/jobs", json={"spec": spec})) == {"spec.train.seed"}


def test_bad_input_did_not_create_jobs(client) -> None:  # noqa: ANN001
    names = {j["name"] for j in client.get("/api/v1/jobs?limit=500").json()["items"]}
    assert not any("\x00" in n for n in names)


def test_a_body_over_the_limit_is_413_naming_it(client) -> None:  # noqa: ANN001
    limit = client.app.state.settings.max_request_bytes
    r = post_raw(client, "/api/v1/jobs", " " * (limit + 1))
    assert r.status_code == 413
    assert str(limit) in r.json()["detail"]
    assert "VAELAB_MAX_REQUEST_BYTES" in r.json()["detail"]

    def chunks():  # no Content-Length: counted as it streams
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    r = client.post("/api/v1/jobs", content=chunks(),
                    headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert str(limit) in r.json()["detail"]


def test_a_huge_body_of_unknown_keys_gets_a_small_422(backend) -> None:  # noqa: ANN001
    from service.main import create_app

    settings = backend.settings(reaper_enabled=False, max_request_bytes=8 * 1024**2)
    body = json.dumps({"spec": tiny_spec(), **{f"unknown_key_{i:07d}": "v" * 20
                                               for i in range(100_000)}})
    assert len(body) > 3_600_000
    with TestClient(create_app(settings), headers=backend.auth) as c:
        r = post_raw(c, "/api/v1/jobs", body)
        assert r.status_code == 422
        assert len(r.content) < 5_000
        detail = r.json()["detail"]
        assert len(detail) == 21 and "99980 more errors" in detail[-1]["message"]
        r = c.post("/api/v1/jobs", json={"spec": {**tiny_spec(), "name": "n" * 100_000}})
        assert r.status_code == 422 and len(r.content) < 5_000


@pytest.mark.parametrize("url,methods", [
    ("/api/v1/jobs", {"GET", "POST", "OPTIONS"}),
    ("/api/v1/sweeps", {"GET", "POST", "OPTIONS"}),
    ("/api/v1/datasets", {"GET", "POST", "OPTIONS"}),
])
def test_options_and_405_list_every_method(client, url: str, methods: set[str]) -> None:  # noqa: ANN001
    r = client.options(url)
    assert r.status_code == 204
    assert set(r.headers["allow"].split(", ")) == methods
    r = client.put(url)
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) == methods


def test_job_path_allows_get_and_delete(client, job_id) -> None:  # noqa: ANN001
    r = client.patch(f"/api/v1/jobs/{job_id}")
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) == {"GET", "DELETE", "OPTIONS"}
