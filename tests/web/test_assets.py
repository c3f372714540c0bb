"""The dashboard's assets are shipped in the package and no page names an outside URL
(in-process; the browser tests in this folder drive the same pages in Chromium)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.web import STATIC_DIR

OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


@pytest.fixture(scope="module")
def client(sqlite_backend):  # noqa: ANN001, ANN201
    with TestClient(create_app(sqlite_backend.settings()),
                    headers=sqlite_backend.auth) as c:
        yield c


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_load_only_local_assets(client, path: str) -> None:  # noqa: ANN001
    r = client.get(path)
    assert r.status_code == 200
    assert not OUTSIDE.search(r.text), OUTSIDE.search(r.text)
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', r.text):
        assert client.get(asset).status_code == 200, asset


def test_vendored_assets_carry_their_licences() -> None:
    for name in ("uplot", "swagger-ui", "redoc"):
        assert (STATIC_DIR / "vendor" / name / "LICENSE").is_file(), name
