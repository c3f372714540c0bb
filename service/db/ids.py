"""Ids typed by hand: a unique prefix of at least six hex digits stands for the whole uuid,
as git's abbreviated commit ids do.

A prefix is turned into the closed range of uuids that start with it, so the lookup is an
index range scan on the primary key on every backend: PostgreSQL orders ``uuid`` by its
bytes and SQLite stores it as 32 hex digits, both the order of the hex string.
"""

from __future__ import annotations

import string
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

MIN_PREFIX = 6


class BadId(ValueError):
    """Neither a uuid nor a prefix of at least six hex digits."""


def parse(text: str) -> uuid.UUID | tuple[uuid.UUID, uuid.UUID]:
    """A whole uuid, or the (lowest, highest) uuids a prefix stands for."""
    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    digits = text.strip().lower().replace("-", "")
    if len(digits) < MIN_PREFIX or len(digits) > 32 or \
            any(c not in string.hexdigits for c in digits):
        raise BadId(f"{text!r} is neither an id nor a prefix of at least {MIN_PREFIX} "
                    "hex digits")
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


def matching(session: Session, column: Any, text: str, limit: int = 3) -> list[uuid.UUID]:
    """The ids in ``column`` (a uuid primary key) that ``text`` names: [] if none; more than
    one when the prefix is ambiguous (up to ``limit``)."""
    wanted = parse(text)
    if isinstance(wanted, uuid.UUID):
        return list(session.scalars(select(column).where(column == wanted)))
    lo, hi = wanted
    return list(session.scalars(
        select(column).where(column >= lo, column <= hi).order_by(column).limit(limit)))
