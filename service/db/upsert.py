"""``INSERT … ON CONFLICT`` for the two supported dialects (PostgreSQL, SQLite): the one place
that picks the dialect's insert construct."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(engine: Engine, table: Any) -> Any:
    """The dialect's ``insert(table)``, which has ``on_conflict_do_nothing/_update``."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def insert_ignore(engine: Engine, table: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING``."""
    return dialect_insert(engine, table).on_conflict_do_nothing()


def upsert(engine: Engine, table: Any, row: dict[str, Any], keys: Iterable[str],
           update: Iterable[str]) -> Any:
    """``INSERT row … ON CONFLICT (keys) DO UPDATE SET`` the ``update`` columns from it."""
    stmt = dialect_insert(engine, table).values(**row)
    return stmt.on_conflict_do_update(
        index_elements=list(keys), set_={k: stmt.excluded[k] for k in update}
    )
