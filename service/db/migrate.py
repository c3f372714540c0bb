"""Run and check Alembic migrations programmatically (``vaelab migrate``, API start-up)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool, text

ROOT = Path(__file__).resolve().parents[2]


class NotMigratedError(RuntimeError):
    pass


class DatabaseUnreachable(RuntimeError):
    """The database refused a connection; the message is its driver's first line."""


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logging"] = False
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def current_revision(url: str) -> str | None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def check(url: str) -> None:
    """Raise NotMigratedError with what to run unless the database is at head."""
    head, current = head_revision(url), current_revision(url)
    if current != head:
        raise NotMigratedError(
            f"the database is not migrated (at revision {current or 'none'}, code expects "
            f"{head}). Run `vaelab migrate` (or `alembic upgrade head`) with the same "
            "VAELAB_DATABASE_URL first."
        )


def check_reachable(url: str) -> None:
    """:func:`check`, with a database that cannot be opened raised as
    :class:`DatabaseUnreachable` (for a command's one-line error)."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        check(url)
    except SQLAlchemyError as exc:
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise DatabaseUnreachable(lines[0] if lines else type(exc).__name__) from None


def check_database(url: str) -> str:
    """``/readyz``: "ok", or why not (unreachable, or not at the head revision)."""
    from service.db.session import get_engine

    try:
        # one pooled connection for both checks: it carries the engine's timeouts
        with get_engine(url).connect() as conn:
            conn.execute(text("SELECT 1"))
            current = MigrationContext.configure(conn).get_current_revision()
        head = head_revision(url)
        if current != head:
            return (f"the database is not migrated (at revision {current or 'none'}, code "
                    f"expects {head}); run `vaelab migrate`")
    except Exception as exc:  # noqa: BLE001 - any failure is "not ready", with its reason
        return f"unreachable: {type(exc).__name__}: {exc}"
    return "ok"
