"""Database outages seen from the service: the reaper does not count one as a worker loss
(both backends), and the API answers a JSON 503 with Retry-After when its database server
refuses connections (a real PostgreSQL URL on a port nothing listens on)."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from service.core import jobs as jobops
from service.core.config import Settings
from service.db import jobs as jobs_db
from service.db.models import Job, utcnow
from service.db.session import (
    forget_unavailable,
    note_unavailable,
    session_scope,
    unavailable_within,
)
from tests.conftest import free_port, tiny_spec


def test_reaper_waits_a_stale_window_after_the_database_was_unavailable(backend) -> None:  # noqa: ANN001
    settings = backend.settings(reaper_stale_after_s=1.5, max_attempts=2,
                                reaper_requeue_queued_after_s=10**9)
    with session_scope(settings.db_url) as s:
        jid = jobs_db.create_job(s, settings, tiny_spec(), owner="outage").id
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "a", "w1", settings.reaper_stale_after_s)
        s.execute(update(Job).where(Job.id == jid)
                  .values(heartbeat_at=utcnow() - timedelta(seconds=120)))
    note_unavailable(settings.db_url)  # this process just failed to reach the database
    assert unavailable_within(settings.db_url, settings.reaper_stale_after_s)
    sent: list[uuid.UUID] = []
    with session_scope(settings.db_url) as s:
        assert jobops.reap(s, settings, lambda j: sent.append(j.id)) == []
        assert s.get(Job, jid).status == "running"  # not reaped: no attempt used
    time.sleep(settings.reaper_stale_after_s + 0.1)  # up for a whole window: reap again
    with session_scope(settings.db_url) as s:
        assert (str(jid), "requeued") in jobops.reap(s, settings, lambda j: sent.append(j.id))
    assert jid in sent
    forget_unavailable(settings.db_url)  # other tests' reapers use longer windows


def test_api_answers_503_with_retry_after_when_the_database_refuses(tmp_path) -> None:  # noqa: ANN001
    from service.main import create_app

    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/vaelab"
    settings = Settings(database_url=url, broker_url="memory://", data_dir=tmp_path,
                        db_retry_after_s=7)
    # no lifespan: it would refuse to start. A token of some kind: checking it needs the
    # database, which answers 503 like every route
    client = TestClient(create_app(settings), headers={"Authorization": "Bearer vl_anything"})
    for path in ("/api/v1/jobs", f"/api/v1/jobs/{uuid.uuid4()}", "/readyz"):
        started = time.monotonic()
        r = client.get(path)
        assert r.status_code == 503, (path, r.text)
        assert r.headers["retry-after"] == "7"
        assert time.monotonic() - started < 5
    r = client.post("/api/v1/jobs", json={"spec": tiny_spec()})
    assert r.status_code == 503 and r.headers["retry-after"] == "7"
    assert r.json() == {"detail": "the database is unavailable; try again shortly"}
