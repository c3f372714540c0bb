"""A 2 GiB request body against a real ``vaelab api`` (uvicorn) process: 413, and the API's
resident memory grows by less than 50 MB (its peak, VmHWM, reset just before, is read from
/proc after). Both ways a body can come: declared (Content-Length) and chunked (streamed from
a generator, counted as it arrives)."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import Procs, tiny_spec

GIB = 1024**3
CHUNK = b" " * (1024**2)
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/<pid>/status")


def _kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _stream(total: int):  # noqa: ANN202
    for _ in range(total // len(CHUNK)):
        yield CHUNK


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_2_gib_post_gets_413_without_the_api_growing(procs: Procs, sqlite_backend,
                                                      declared: bool) -> None:  # noqa: ANN001
    url = procs.api(sqlite_backend, VAELAB_REAPER_ENABLED="false")
    pid = procs.procs[-1].pid
    with httpx.Client(base_url=url, timeout=120, headers=sqlite_backend.auth) as c:  # warm up
        assert c.post("/api/v1/jobs", json={"spec": tiny_spec()}).status_code == 201
        assert c.post("/api/v1/jobs", content=_stream(2 * 1024**2),
                      headers={"content-type": "application/json"}).status_code == 413
        rss_before = _kib(pid, "VmRSS")
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        headers = {"content-type": "application/json"}
        if declared:
            headers["content-length"] = str(2 * GIB)
        r = c.post("/api/v1/jobs", content=_stream(2 * GIB), headers=headers)
        peak, rss_after = _kib(pid, "VmHWM"), _kib(pid, "VmRSS")
        assert r.status_code == 413, r.text
        assert "VAELAB_MAX_REQUEST_BYTES" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200  # and it goes on serving
    growth_mb = (max(peak, rss_after) - rss_before) / 1024
    print(f"\n2 GiB {'declared' if declared else 'chunked'} POST: 413; API RSS "
          f"{rss_before / 1024:.1f} MB before, peak {peak / 1024:.1f} MB, "
          f"growth {growth_mb:.1f} MB")
    assert growth_mb < 50
