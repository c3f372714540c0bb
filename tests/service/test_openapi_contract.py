"""Contract test: schemathesis generates requests from the app's own OpenAPI schema (fixed
seed, a bounded number of examples per operation) against the ASGI app on SQLite, and every
answer must be no 5xx, a status code the operation documents, and a body matching the
documented schema. The event stream (never ends) is left out."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from service.core.config import Settings
from service.db import migrate
from service.main import create_app
from tests.conftest import ADMIN, make_user, tiny_spec

EXAMPLES = 25
CHECKS = [schemathesis.checks.not_a_server_error, status_code_conformance,
          response_schema_conformance]


# The schema is read (with the app's lifespan, which wants a migrated database) when the
# module is collected.
DATA = Path(tempfile.mkdtemp(prefix="vaelab-contract-"))
APP = create_app(Settings(data_dir=DATA, reaper_enabled=False, cpu_queue="cpu_contract",
                          gpu_queue="gpu_contract"))
migrate.upgrade(APP.state.settings.db_url)
AUTH = {"Authorization": f"Bearer {make_user(APP.state.settings.db_url, ADMIN, 'admin')}"}
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def database() -> Iterator[None]:
    with TestClient(APP, headers=AUTH) as c:  # one job so that lists and job routes have something
        assert c.post("/api/v1/jobs", json={"spec": tiny_spec()}).status_code == 201
    yield
    shutil.rmtree(DATA, ignore_errors=True)
    print(f"\nschemathesis: {len(CALLS)} operations, {sum(CALLS.values())} requests")


CALLS: Counter[str] = Counter()


@schema.exclude(path_regex=r"/events$").parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_schema_says(case) -> None:  # noqa: ANN001
    CALLS[case.operation.label] += 1
    case.call_and_validate(checks=CHECKS, headers=AUTH)


def test_every_operation_documents_the_422_it_returns() -> None:
    doc = APP.openapi()
    assert "HTTPValidationError" not in doc["components"]["schemas"]  # FastAPI's {loc, msg}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            body = op["responses"]["422"]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ValidationErrorOut"}, (method, path)
            assert "413" in op["responses"], (method, path)
            if "{job_id}" in path or "{sweep_id}" in path or "{dataset_id}" in path:
                assert {"404", "409"} <= set(op["responses"]), (method, path)
    problem = doc["components"]["schemas"]["FieldProblem"]
    assert set(problem["properties"]) == {"field", "message"}
