"""Checkpoint retention (service.core.retention, applied by the worker's artifact store) on a
real run, both backends: exactly the last N, the best-ELBO and the final checkpoints stay,
as rows and as files."""

from __future__ import annotations

from pathlib import Path

from service.core.retention import to_keep
from service.db import jobs as jobs_db
from service.db.artifacts import checkpoint_rows
from service.db.evaluations import elbo_by_step
from service.db.session import get_engine, session_scope
from tests.conftest import tiny_spec
from worker.runner import run_job


def test_to_keep() -> None:
    steps = [10, 20, 30, 40, 50]
    assert to_keep(steps, {10: -5.0, 20: -9.0, 50: -7.0}, 2) == {10, 40, 50}
    assert to_keep(steps, {}, 2) == {40, 50}
    assert to_keep(steps, {40: -1.0}, 1) == {40, 50}
    assert to_keep(steps, {}, 0) == set(steps)  # 0 keeps every one
    assert to_keep([], {}, 3) == set()


def _run(backend, spec: dict, **settings) -> tuple[list[int], dict[int, float], Path]:  # noqa: ANN001
    s = backend.settings(**settings)
    with session_scope(s.db_url) as session:
        jid = jobs_db.create_job(session, s, spec, owner="ret", device="cpu").id
    assert run_job(str(jid), s) == "succeeded"
    engine = get_engine(s.db_url)
    rows = checkpoint_rows(engine, jid)
    files = sorted(p.name for p in (s.artifacts / str(jid) / "checkpoints").iterdir())
    assert files == sorted(Path(path).name for _i, _s, path in rows)  # rows == files
    return [step for _i, step, _p in rows], elbo_by_step(engine, jid), s.artifacts / str(jid)


def test_the_spec_keeps_the_last_n_plus_best_and_final(backend) -> None:  # noqa: ANN001
    spec = tiny_spec(epochs=4)
    spec["train"]["keep_checkpoints"] = 2
    steps, elbos, _ = _run(backend, spec, checkpoint_keep_last=1)  # the spec wins
    best = max((s for s in (24, 48, 72, 96) if s in elbos), key=lambda s: elbos[s])
    assert set(steps) == {72, 96, best}
    assert len(steps) == len({72, 96, best})


def test_the_deployment_default_applies_without_a_spec_field(backend) -> None:  # noqa: ANN001
    steps, elbos, _ = _run(backend, tiny_spec(epochs=3), checkpoint_keep_last=1)
    best = max((s for s in (24, 48, 72) if s in elbos), key=lambda s: elbos[s])
    assert set(steps) == {72, best}


def test_an_attempt_that_lost_its_lease_prunes_nothing(backend) -> None:  # noqa: ANN001
    """A stale attempt (paused between recording a checkpoint and pruning, resumed after a
    takeover) must not delete the checkpoints of the attempt that holds the job now."""
    import pytest

    from service.core.retention import prune
    from service.db.attempts import LeaseLost

    s = backend.settings(checkpoint_keep_last=0)  # the run keeps all four: something to prune
    with session_scope(s.db_url) as session:
        jid = jobs_db.create_job(session, s, tiny_spec(epochs=4), owner="ret", device="cpu").id
    assert run_job(str(jid), s) == "succeeded"
    engine = get_engine(s.db_url)
    before = checkpoint_rows(engine, jid)
    assert len(before) == 4
    with pytest.raises(LeaseLost):
        prune(engine, s.artifacts, jid, 1, lease="a-lease-this-job-never-had")
    assert checkpoint_rows(engine, jid) == before
    assert all((s.artifacts / path).is_file() for _i, _s, path in before)
    assert prune(engine, s.artifacts, jid, 1) != []  # no lease (not an attempt): prunes
    assert len(checkpoint_rows(engine, jid)) < 4
