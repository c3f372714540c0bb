"""Engines and sessions. One engine per URL per process; SQLite gets WAL + a busy timeout so
the API can read while a worker writes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

# What callers outside service.db catch, so they need not know the driver or SQLAlchemy:
# any error the database raised, and the transient kind (unreachable, restarting, locked).
DatabaseError = DBAPIError
DatabaseUnavailable = OperationalError

_LOCK = threading.Lock()
_ENGINES: dict[str, Engine] = {}
_MAKERS: dict[str, sessionmaker[Session]] = {}


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def get_engine(url: str) -> Engine:
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                engine = create_engine(
                    url, connect_args={"check_same_thread": False, "timeout": 30}
                )
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
            _ENGINES[url] = engine
        return engine


def get_sessionmaker(url: str) -> sessionmaker[Session]:
    engine = get_engine(url)
    with _LOCK:
        maker = _MAKERS.get(url)
        if maker is None:
            maker = _MAKERS[url] = sessionmaker(engine, expire_on_commit=False)
        return maker


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose_all() -> None:
    """Close pooled connections (after a fork, between tests)."""
    with _LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()
        _MAKERS.clear()
