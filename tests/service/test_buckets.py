"""The bucket rule (service.db.metrics.buckets): one definition behind the writer's rollups and
the reader's downsampling, checked against a brute-force reading of it."""

from __future__ import annotations

import random
import uuid

import pytest

from service.db.metrics import minmax_downsample, rollup_rows
from service.db.metrics.buckets import Extremes, decode, precedes, representatives


def _brute(points: list[tuple[int, float | None]]) -> tuple:
    """Min point = least (value, step), max point = least (-value, step); NULLs never count."""
    vals = [(s, v) for s, v in points if v is not None]
    nulls = [s for s, v in points if v is None]
    mn = min(vals, key=lambda p: (p[1], p[0])) if vals else (None, None)
    mx = min(vals, key=lambda p: (-p[1], p[0])) if vals else (None, None)
    return mn[1], mn[0], mx[1], mx[0], min(nulls) if nulls else None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_extremes_follow_the_rule_with_ties_and_nulls(seed: int) -> None:
    rng = random.Random(seed)  # values rounded to 0 decimals: ties everywhere
    steps = rng.sample(range(1000), 60)
    points = [(s, None if rng.random() < 0.2 else float(rng.randint(-3, 3))) for s in steps]
    ext = Extremes()
    for s, v in points:
        ext.add(s, v)
    assert (ext.min_value, ext.min_step, ext.max_value, ext.max_step,
            ext.null_step) == _brute(points)


def test_earliest_step_wins_a_tie_both_ways() -> None:
    assert precedes("min", 1.0, 3, 1.0, 5) and not precedes("min", 1.0, 5, 1.0, 3)
    assert precedes("max", 1.0, 3, 1.0, 5) and not precedes("max", 1.0, 5, 1.0, 3)
    assert precedes("max", 2.0, 9, 1.0, 1) and not precedes("min", 2.0, 9, 1.0, 1)
    assert decode("max", [-2.5, 7.0]) == (2.5, 7) and decode("min", None) == (None, None)


def test_representatives_are_in_step_order() -> None:
    assert representatives(1.0, 9, 5.0, 2, None) == [(2, 5.0), (9, 1.0)]
    assert representatives(1.0, 4, 1.0, 4, None) == [(4, 1.0)]
    assert representatives(None, None, None, None, 6) == [(6, None)]


def test_writer_and_reader_pick_the_same_points() -> None:
    """A rollup bucket and a downsampled output bucket over the same steps agree."""
    rng = random.Random(7)
    steps = list(range(0, 64))
    values = [None if rng.random() < 0.1 else float(rng.randint(0, 4)) for _ in steps]
    rows = [r for r in rollup_rows(uuid.uuid4(), [("k", s, v) for s, v in zip(steps, values,
                                                                              strict=True)])
            if r["level"] == 4]  # 4 buckets of 16 steps
    ds_steps, _ = minmax_downsample(steps, values, max_points=8, lo=0, hi=63)  # 4 buckets
    picked = sorted(s for r in rows for s, _v in representatives(
        r["min_value"], r["min_step"], r["max_value"], r["max_step"], r["null_step"]))
    assert ds_steps == picked
