"""The bucket rule, written once: which point stands for a bucket of a metric series.

A bucket keeps its **min point** and its **max point**; an extreme is the point with the
least ``(sign · value, step)`` — sign +1 for the min, -1 for the max — so the earliest step
wins a tie on value. NULL values (non-finite points) never compete; a bucket holding only
NULLs is represented by its first NULL step. The same rule decides a rollup bucket
(written by :mod:`.write`), the merge of a new partial rollup into a stored one, and an
output bucket of a downsampled read (:mod:`.read`), in Python and in the SQL of both
dialects, all rendered from :data:`SIGN` below. (Migration 0002 keeps its own frozen copy,
as migrations must.)
"""

from __future__ import annotations

from typing import Literal

Extreme = Literal["min", "max"]
SIGN: dict[Extreme, int] = {"min": 1, "max": -1}


def precedes(kind: Extreme, value: float, step: int, other_value: float | None,
             other_step: int | None) -> bool:
    """Does point (step, value) beat the current ``kind`` extreme (None: there is none)?"""
    if other_value is None:
        return True
    a, b = SIGN[kind] * value, SIGN[kind] * other_value
    return a < b or (a == b and step < other_step)


class Extremes:
    """The running min point, max point, first NULL step and step extent of one bucket."""

    __slots__ = ("min_value", "min_step", "max_value", "max_step", "null_step",
                 "first_step", "last_step", "n")

    def __init__(self) -> None:
        self.min_value: float | None = None
        self.min_step: int | None = None
        self.max_value: float | None = None
        self.max_step: int | None = None
        self.null_step: int | None = None
        self.first_step: int | None = None
        self.last_step: int | None = None
        self.n = 0

    def add(self, step: int, value: float | None) -> None:
        self.n += 1
        if self.first_step is None or step < self.first_step:
            self.first_step = step
        if self.last_step is None or step > self.last_step:
            self.last_step = step
        if value is None:
            if self.null_step is None or step < self.null_step:
                self.null_step = step
            return
        if precedes("min", value, step, self.min_value, self.min_step):
            self.min_value, self.min_step = value, step
        if precedes("max", value, step, self.max_value, self.max_step):
            self.max_value, self.max_step = value, step

    def as_row(self) -> dict[str, float | int | None]:
        return {k: getattr(self, k) for k in self.__slots__}


def representatives(min_value: float | None, min_step: int | None, max_value: float | None,
                    max_step: int | None, null_step: int | None
                    ) -> list[tuple[int, float | None]]:
    """The (step, value) points that stand for a bucket, in step order."""
    if min_step is None:
        return [] if null_step is None else [(null_step, None)]
    if min_step == max_step:
        return [(min_step, min_value)]
    pts = [(min_step, min_value), (max_step, max_value)]
    return pts if min_step < max_step else pts[::-1]


# ------------------------------------------------------------------ the rule in SQL


def _neg(kind: Extreme, expr: str) -> str:
    return expr if SIGN[kind] > 0 else f"-({expr})"


def pg_agg(kind: Extreme, value: str, step: str) -> str:
    """PostgreSQL aggregate: the ``kind`` extreme as ARRAY[sign · value, step]; decode it
    with :func:`pg_value` / :func:`pg_step` (SQL) or :func:`decode` (Python)."""
    return (f"min(ARRAY[{_neg(kind, value)}, ({step})::float8]) "
            f"FILTER (WHERE {value} IS NOT NULL)")


def pg_value(kind: Extreme, arr: str) -> str:
    return _neg(kind, f"{arr}[1]")


def pg_step(arr: str) -> str:
    return f"({arr}[2])::int"


def decode(kind: Extreme, arr: list[float] | None) -> tuple[float | None, int | None]:
    """(value, step) of a :func:`pg_agg` result fetched into Python."""
    if arr is None:
        return None, None
    return SIGN[kind] * arr[0], int(arr[1])


def sql_order(kind: Extreme, value: str, step: str) -> str:
    """ORDER BY that puts the ``kind`` extreme first (window functions, SQLite)."""
    return f"{value} {'ASC' if SIGN[kind] > 0 else 'DESC'}, {step}"


def sql_wins(kind: Extreme, new_v: str, new_s: str, old_v: str, old_s: str) -> str:
    """Portable SQL: does the new ``kind`` point beat the old one (old may be NULL)?"""
    op = "<" if SIGN[kind] > 0 else ">"
    return (f"({old_v} IS NULL OR {new_v} {op} {old_v} "
            f"OR ({new_v} = {old_v} AND {new_s} < {old_s}))")
