"""Engines and sessions. One engine per URL per process; SQLite gets WAL + a busy timeout so
the API can read while a worker writes.

Every engine is bounded in time (``VAELAB_DB_*`` settings): PostgreSQL gets
``connect_timeout``, a server-side ``statement_timeout``, a pool timeout, a check of each
pooled connection at checkout (``SELECT 1`` under :data:`service.db.watchdog.WATCHDOG`, so a
frozen server fails the request in ``db_ping_timeout_s`` rather than hanging it), and a
client-side deadline on every statement for a server that does not answer at all. Each
failure to reach the database is noted (:func:`unavailable_within`), so the reaper can tell a
database outage from a silent worker.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from service.db.watchdog import WATCHDOG

# What callers outside service.db catch, so they need not know the driver or SQLAlchemy:
# any error the database raised, and the transient kind (unreachable, restarting, locked).
DatabaseError = DBAPIError
DatabaseUnavailable = OperationalError
# everything that means "the database cannot be reached now" (the API answers 503, the worker
# retries): the driver's connection errors, a dropped connection, no free pooled connection
UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)

_LAST_UNAVAILABLE: dict[str, float] = {}  # url -> time.monotonic() of its last failure
_STATEMENT_MARGIN_S = 2.0  # the client-side deadline past the server's statement_timeout

_LOCK = threading.Lock()
_ENGINES: dict[str, Engine] = {}
_MAKERS: dict[str, sessionmaker[Session]] = {}


def note_unavailable(url: str) -> None:
    """Record that the database at ``url`` could not be reached just now (this process's
    view)."""
    _LAST_UNAVAILABLE[url] = time.monotonic()


def unavailable_within(url: str, seconds: float) -> bool:
    """Whether this process failed to reach the database at ``url`` in the last
    ``seconds``."""
    return time.monotonic() - _LAST_UNAVAILABLE.get(url, -math.inf) < seconds


def forget_unavailable(url: str) -> None:
    """Drop what :func:`note_unavailable` recorded for ``url`` (tests)."""
    _LAST_UNAVAILABLE.pop(url, None)


def _timeouts() -> Any:
    from service.core.config import get_settings

    return get_settings()


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
    busy_ms = int(_timeouts().db_statement_timeout_s * 1000)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={busy_ms}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _server_engine(url: str) -> Engine:
    t = _timeouts()
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        connect_args = {
            "connect_timeout": max(2, math.ceil(t.db_connect_timeout_s)),
            "options": f"-c statement_timeout={int(t.db_statement_timeout_s * 1000)}",
        }
    engine = create_engine(url, pool_size=10, max_overflow=20,
                           pool_timeout=t.db_pool_timeout_s, connect_args=connect_args)
    if not url.startswith("postgresql"):
        return engine
    ping_s, statement_s = t.db_ping_timeout_s, t.db_statement_timeout_s + _STATEMENT_MARGIN_S

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_conn, record) -> None:  # noqa: ANN001
        record.info["fresh"] = True  # just connected: no need to check it at once

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn, record, _proxy) -> None:  # noqa: ANN001
        # pool_pre_ping's check, under a deadline: a frozen server fails here in ping_s
        if record.info.pop("fresh", False):
            return
        token = WATCHDOG.arm(dbapi_conn.fileno(), ping_s)
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            note_unavailable(url)
            if WATCHDOG.disarm(token):  # no answer in time: give up, do not reconnect
                raise OperationalError("SELECT 1 (connection check)", None,
                                       TimeoutError(f"no answer in {ping_s:g} s")) from exc
            raise DisconnectionError(str(exc)) from exc  # a dead connection: the pool retries
        WATCHDOG.disarm(token)

    @event.listens_for(engine, "before_cursor_execute")
    def _arm(conn, _cursor, _stmt, _params, _context, _many) -> None:  # noqa: ANN001
        conn.info["watchdog"] = WATCHDOG.arm(conn.connection.dbapi_connection.fileno(),
                                             statement_s)

    @event.listens_for(engine, "after_cursor_execute")
    def _disarm(conn, _cursor, _stmt, _params, _context, _many) -> None:  # noqa: ANN001
        WATCHDOG.disarm(conn.info.pop("watchdog", None))

    @event.listens_for(engine, "handle_error")
    def _failed(context) -> None:  # noqa: ANN001
        conn = context.connection
        fired = conn is not None and WATCHDOG.disarm(conn.info.pop("watchdog", None))
        if fired:
            context.is_disconnect = True  # the socket is cut: drop the connection
        if fired or context.is_disconnect or isinstance(context.sqlalchemy_exception,
                                                        OperationalError):
            note_unavailable(url)

    return engine


def get_engine(url: str) -> Engine:
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                busy_s = _timeouts().db_statement_timeout_s
                engine = create_engine(
                    url, connect_args={"check_same_thread": False, "timeout": busy_s}
                )
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = _server_engine(url)
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


def dispose_all(close: bool = True) -> None:
    """Drop every engine and its pooled connections: closed (between tests), or, in a child
    after a fork, ``close=False``: left to the parent that owns them (SQLAlchemy's advice
    for forks: closing a PostgreSQL connection in the child ends the parent's session, and
    SQLite connections must not be used across fork())."""
    with _LOCK:
        for engine in _ENGINES.values():
            engine.dispose(close=close)
        _ENGINES.clear()
        _MAKERS.clear()
