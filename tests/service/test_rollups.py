"""Rollup-backed downsampling equals the exact scan of every point (real database, both
backends): random series with spikes, NULLs, replays and out-of-order batches; windows that
cut rollup buckets; the sink writes the rollups; the migration fills them for old points."""

from __future__ import annotations

import random
import uuid

import pytest
from sqlalchemy import create_engine, insert, select

from service.db import jobs as jobs_db
from service.db import migrate
from service.db.metrics import minmax_downsample, read_series, rollup_rows, rollup_shifts
from service.db.models import Metric, MetricRollup
from service.db.session import get_engine, session_scope
from tests.conftest import _make_postgres, _make_sqlite, tiny_spec
from worker.sink import SqlMetricSink

N_STEPS = 30_000  # steps 1..30,000 (key "loss" every step, key "sparse" every 7th)


def _job(backend) -> uuid.UUID:  # noqa: ANN001
    settings = backend.settings()
    with session_scope(settings.db_url) as s:
        return jobs_db.create_job(s, settings, tiny_spec(), owner="rollups").id


@pytest.fixture(scope="module")
def series(backend):  # noqa: ANN001, ANN201
    """Seed 7: Gaussian noise, 40 spikes of +-1e3..1e6, runs of NULL, ties; written in
    shuffled 500-step chunks (out of order), then 3,000 replayed steps with other values."""
    rng = random.Random(7)
    jid = _job(backend)
    truth: dict[str, dict[int, float | None]] = {"loss": {}, "sparse": {}}
    for step in range(1, N_STEPS + 1):
        v: float | None = round(rng.gauss(0, 1), 1)  # rounding makes ties common
        if rng.random() < 40 / N_STEPS:
            v = rng.choice([-1, 1]) * 10 ** rng.uniform(3, 6)
        if 12_000 <= step < 12_300 or rng.random() < 0.002:
            v = None
        truth["loss"][step] = v
        if step % 7 == 0:
            truth["sparse"][step] = float(step % 13)
    chunks = [list(range(a, min(a + 500, N_STEPS + 1))) for a in range(1, N_STEPS + 1, 500)]
    rng.shuffle(chunks)
    sink = SqlMetricSink(get_engine(backend.db_url), jid, batch_points=997, batch_seconds=3600)
    for chunk in chunks:
        for step in chunk:
            point = {k: truth[k][step] for k in truth if step in truth[k]}
            sink.log(step, {k: (float("nan") if v is None else v) for k, v in point.items()})
    sink.flush()
    # a resumed run replays steps with other values (and one batch repeats a step): ignored
    for step in [*range(5_000, 8_000), 7_999]:
        sink.log(step, {"loss": 1e9, **({"sparse": -1e9} if step % 7 == 0 else {})})
    sink.flush()
    return backend, jid, truth


def _windows() -> list[tuple[int | None, int | None, int]]:
    rng = random.Random(11)
    cases: list[tuple[int | None, int | None, int]] = [
        (None, None, 1000), (None, None, 100), (None, None, 20), (None, None, 4),
        (None, None, 2), (None, None, 3), (1, N_STEPS, 150), (0, 40_000, 64),
        (4_096, 8_191, 8), (4_095, 8_192, 8), (11_990, 12_310, 2), (None, 16_000, 50),
    ]
    for _ in range(24):  # random windows, most cutting rollup buckets at both edges
        a = rng.randrange(0, N_STEPS)
        b = rng.randrange(a, N_STEPS + 100)
        cases.append((a, b, rng.choice([2, 4, 10, 30, 100, 500])))
    return cases


@pytest.mark.parametrize("key", ["loss", "sparse"])
def test_rollup_answer_equals_the_exact_scan(series, key: str) -> None:  # noqa: ANN001
    backend, jid, truth = series
    used = 0
    with session_scope(backend.db_url) as s:
        for start, end, max_points in _windows():
            fast = read_series(s, jid, key, start, end, max_points)
            exact = read_series(s, jid, key, start, end, max_points, use_rollups=False)
            case = (start, end, max_points)
            assert (fast.steps, fast.values) == (exact.steps, exact.values), case
            assert fast.points_in_range == exact.points_in_range, case
            assert fast.downsampled == exact.downsampled, case
            # and both equal the in-memory reference over the first-written values
            lo = min(truth[key]) if start is None else start
            hi = max(truth[key]) if end is None else end
            steps = sorted(st for st in truth[key] if lo <= st <= hi)
            ref = minmax_downsample(steps, [truth[key][st] for st in steps], max_points, lo, hi)
            assert (fast.steps, fast.values) == ref, case
            assert len(fast.steps) <= max_points
            used += bool(rollup_shifts(hi - lo + 1, max(1, max_points // 2)))
    assert used >= 10  # the rollup path really ran, on several levels


def test_every_spike_survives_through_the_rollups(series) -> None:  # noqa: ANN001
    backend, jid, truth = series
    with session_scope(backend.db_url) as s:
        got = read_series(s, jid, "loss", None, None, 20)
    assert rollup_shifts(N_STEPS, 10) == [8, 4]
    kept = dict(zip(got.steps, got.values, strict=True))
    spikes = {st: v for st, v in truth["loss"].items() if v is not None and abs(v) >= 1e3}
    assert len(spikes) >= 20
    hidden = {st for st, v in spikes.items()  # a bigger spike in the same bucket wins
              if any(abs(w) > abs(v) and (st - 1) * 10 // N_STEPS == (t - 1) * 10 // N_STEPS
                     and (w > 0) == (v > 0) for t, w in spikes.items())}
    assert len(spikes) - len(hidden) >= 10
    assert all(kept.get(st) == v for st, v in spikes.items() if st not in hidden)
    assert 1e9 not in kept.values()  # the replayed values never show


def _stored_rollups(url: str, jid: uuid.UUID) -> dict[tuple, tuple]:
    with session_scope(url) as s:
        rows = s.scalars(select(MetricRollup).where(MetricRollup.job_id == jid)).all()
        return {(r.key, r.level, r.bucket): (r.min_value, r.min_step, r.max_value, r.max_step,
                                             r.null_step, r.first_step, r.last_step, r.n)
                for r in rows}


def _expected_rollups(jid: uuid.UUID, truth: dict[str, dict[int, float | None]]) -> dict:
    points = [(k, st, v) for k, pts in truth.items() for st, v in pts.items()]
    return {(r["key"], r["level"], r["bucket"]): (
        r["min_value"], r["min_step"], r["max_value"], r["max_step"], r["null_step"],
        r["first_step"], r["last_step"], r["n"]) for r in rollup_rows(jid, points)}


def test_the_sink_writes_rollups_that_replays_do_not_change(series) -> None:  # noqa: ANN001
    backend, jid, truth = series
    stored = _stored_rollups(backend.db_url, jid)
    expected = _expected_rollups(jid, truth)
    assert stored == expected  # n counts each point once despite the replays
    assert ("loss", 12, 0) in stored and stored["loss", 4, 750][4] == 12_000  # a NULL run
    sink = SqlMetricSink(get_engine(backend.db_url), jid, batch_points=1000, batch_seconds=60)
    for step in range(1, 2_001):  # replay a whole stretch once more: nothing changes
        sink.log(step, {"loss": -1e12, **({"sparse": 1e12} if step % 7 == 0 else {})})
    sink.flush()
    assert _stored_rollups(backend.db_url, jid) == expected


def test_the_migration_fills_rollups_for_existing_points(backend, tmp_path) -> None:  # noqa: ANN001
    fresh = _make_postgres(tmp_path) if backend.name == "postgres" else _make_sqlite(tmp_path)
    try:
        migrate.upgrade(fresh.db_url, "0001")
        rng = random.Random(3)
        jid = uuid.uuid4()
        truth = {"a": {st: (None if rng.random() < 0.05 else float(rng.randint(0, 9)))
                       for st in rng.sample(range(20_000), 3_000)}}
        engine = create_engine(fresh.db_url)
        with engine.begin() as conn:
            conn.execute(insert(Metric), [{"job_id": jid, "key": "a", "step": st, "value": v,
                                           "ts": 1.0} for st, v in truth["a"].items()])
        engine.dispose()
        migrate.upgrade(fresh.db_url)
        assert _stored_rollups(fresh.db_url, jid) == _expected_rollups(jid, truth)
    finally:
        for fn in fresh.cleanup:
            fn()
