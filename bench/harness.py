"""What the service benchmarks share: a scratch PostgreSQL database for one run (created from
an admin URL, dropped however the run ends), the API served by uvicorn in a thread, and an
admin token for its ``/api/v1`` routes."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

DEFAULT_ADMIN_URL = os.environ.get(
    "VAELAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """Yield the SQLAlchemy URL of a new database ``vaelab_bench_<random>``."""
    admin = make_url(admin_url)
    name = f"vaelab_bench_{uuid.uuid4().hex[:8]}"
    conninfo = dict(host=admin.host, port=admin.port or 5432, user=admin.username,
                    password=admin.password, dbname=admin.database, autocommit=True)
    with psycopg.connect(**conninfo) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        from service.db.session import dispose_all

        dispose_all()
        with psycopg.connect(**conninfo) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def admin_token(db_url: str, name: str = "bench") -> str:
    """A token of admin ``name`` (created if missing) on the migrated database ``db_url``."""
    from service.db import users as users_db
    from service.db.session import session_scope

    with session_scope(db_url) as s:
        if users_db.get_user(s, name) is None:
            users_db.create_user(s, name, role="admin")
        return users_db.create_token(s, name)[1]


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a local port in a daemon thread; yield its base URL and
    stop the server when the block ends."""
    import uvicorn

    port = 8765 + os.getpid() % 1000
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
