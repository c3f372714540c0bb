"""The batched metric write path (real database, both backends): a batch given as columns
stores exactly the points given (NULL for non-finite, the first of a repeated (key, step)),
ignores points already stored, and folds only new points into the rollups; the binary arrays
PostgreSQL receives decode to the values sent."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from service.db import jobs as jobs_db
from service.db.metrics import insert_columns, insert_points, rollup_rows
from service.db.metrics.pgarrays import float8_array, int4_array
from service.db.models import Metric, MetricRollup
from service.db.session import get_engine, session_scope
from tests.conftest import tiny_spec

ODD = [0.0, -0.0, 1e-300, -1e300, 3.141592653589793, float("inf"), -float("inf"), 2.5e-7]


def _job(backend) -> uuid.UUID:  # noqa: ANN001
    settings = backend.settings()
    with session_scope(settings.db_url) as s:
        return jobs_db.create_job(s, settings, tiny_spec(), owner="ingest").id


def _stored(url: str, jid: uuid.UUID) -> dict[tuple[str, int], tuple[float | None, float]]:
    with session_scope(url) as s:
        rows = s.execute(select(Metric.key, Metric.step, Metric.value, Metric.ts)
                         .where(Metric.job_id == jid)).all()
    return {(k, st): (v, ts) for k, st, v, ts in rows}


def _rollups(url: str, jid: uuid.UUID) -> dict:
    cols = ("min_value", "min_step", "max_value", "max_step", "null_step", "first_step",
            "last_step", "n")
    with session_scope(url) as s:
        rows = s.execute(select(MetricRollup).where(MetricRollup.job_id == jid)).scalars()
        return {(r.key, r.level, r.bucket): tuple(getattr(r, c) for c in cols) for r in rows}


def test_columns_store_exactly_the_points_given(backend) -> None:  # noqa: ANN001
    jid, url = _job(backend), backend.db_url
    keys = ["a", "b", "a", "ü/λ key", "a", "b"] * 40
    steps = [s // 3 + 1 for s in range(len(keys))]
    values: list[float | None] = [ODD[i % len(ODD)] if i % 11 else None
                                  for i in range(len(keys))]
    with get_engine(url).begin() as conn:
        insert_columns(conn, jid, keys, steps, values, 1234.5)
    first: dict[tuple[str, int], float | None] = {}
    for k, st, v in zip(keys, steps, values, strict=True):
        first.setdefault((k, st), v)  # a (key, step) repeated in a batch keeps its first
    stored = _stored(url, jid)
    assert set(stored) == set(first)
    for kst, v in first.items():
        got, ts = stored[kst]
        assert ts == 1234.5
        assert (got is None and v is None) or got == v, (kst, got, v)
    expected = {(r["key"], r["level"], r["bucket"]): tuple(
        r[c] for c in ("min_value", "min_step", "max_value", "max_step", "null_step",
                       "first_step", "last_step", "n"))
        for r in rollup_rows(jid, [(k, st, v) for (k, st), v in first.items()])}
    assert _rollups(url, jid) == expected

    # a redelivered batch with other values and stamps, plus one new point: only that lands
    with get_engine(url).begin() as conn:
        insert_columns(conn, jid, ["a", "a"], [1, 10_000], [99.0, 7.0], [5.0, 6.0])
    again = _stored(url, jid)
    assert again.pop(("a", 10_000)) == (7.0, 6.0)
    assert again == stored
    expected_n = sum(r[7] for (k, lvl, _b), r in expected.items() if lvl == 4) + 1
    assert sum(r[7] for (_k, lvl, _b), r in _rollups(url, jid).items() if lvl == 4) \
        == expected_n


def test_rows_and_columns_write_the_same(backend) -> None:  # noqa: ANN001
    url = backend.db_url
    a, b = _job(backend), _job(backend)
    rows = [{"key": "loss", "step": s, "value": s * 0.5, "ts": 100.0 + s} for s in range(1, 300)]
    with get_engine(url).begin() as conn:
        insert_points(conn, a, rows)
        insert_points(conn, a, [])
        insert_columns(conn, b, [r["key"] for r in rows], [r["step"] for r in rows],
                       [r["value"] for r in rows], [r["ts"] for r in rows])
        insert_columns(conn, b, [], [], [], 1.0)
    assert _stored(url, a) == _stored(url, b) and len(_stored(url, a)) == 299
    assert list(_rollups(url, a).values()) == list(_rollups(url, b).values())


def test_binary_arrays_decode_to_what_was_sent(backend) -> None:  # noqa: ANN001
    """PostgreSQL reads the arrays as sent (SQLite takes the rows as they are: no arrays)."""
    ints = [0, 1, -1, 2**31 - 1, -(2**31), 42]
    floats: list[float | None] = [*ODD, None, float("nan")]
    if backend.name == "sqlite":
        assert float8_array(floats)[:4] == b"\x00\x00\x00\x01"  # built all the same
        return
    import psycopg
    from sqlalchemy.engine import make_url

    from service.db.metrics import pgarrays

    u = make_url(backend.db_url)
    with psycopg.connect(host=u.host, port=u.port or 5432, user=u.username,
                         dbname=u.database) as raw:
        pgarrays.register(raw)  # a connection of its own: taught here, not by the pool
        cur = raw.cursor()
        cur.execute("SELECT %b::int4[], array(SELECT NULLIF(v, 'NaN'::float8) "
                    "FROM unnest(%b::float8[]) AS v)", (int4_array(ints), float8_array(floats)))
        got_ints, got_floats = cur.fetchone()
    with psycopg.connect(host=u.host, port=u.port or 5432, user=u.username,
                         dbname=u.database) as untaught, \
            pytest.raises(psycopg.errors.CannotCoerce):  # sent as bytea: refused
        untaught.execute("SELECT %b::int4[]", (int4_array(ints),))
    assert got_ints == ints
    assert got_floats == [*ODD, None, None]
