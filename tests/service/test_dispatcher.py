"""The dispatcher's pass against a real database (both backends): releases to live slots,
a broker failure, the claim timeout, preemption, quotas in the queue view, usage. ``send``
records what would go to the broker (the chaos and end-to-end tests use the real one)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from service.core import dispatcher
from service.db import jobs as jobs_db
from service.db import scheduling as sched_db
from service.db import workers as workers_db
from service.db.models import Job, UserUsage, Worker, utcnow
from service.db.session import session_scope
from tests.conftest import tiny_spec
from tests.lab import fresh_backend, set_quota  # noqa: F401
from tests.service.test_scheduler import heads


@pytest.fixture
def settings(fresh_backend):  # noqa: ANN001, ANN201, F811
    return fresh_backend.settings(dispatch_claim_timeout_s=30, reaper_stale_after_s=10)


def _job(settings, owner: str = "alice", priority: int = 0) -> uuid.UUID:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        return jobs_db.create_job(s, settings, tiny_spec(), owner=owner, priority=priority).id


def _worker(settings, name: str, slots: int = 1, kind: str = "any") -> None:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        workers_db.register(s, name, device_kind=kind, slots=slots)


def _pass(settings, sent: list | None = None):  # noqa: ANN001, ANN202
    sent = [] if sent is None else sent
    with session_scope(settings.db_url) as s:
        return dispatcher.dispatch_once(s, settings, lambda j, w: sent.append((j, w)))


def _get(settings, jid: uuid.UUID) -> Job:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        return s.get(Job, jid)


def test_releases_fill_free_slots_only(settings) -> None:  # noqa: ANN001
    a, b = _job(settings), _job(settings, "bob")
    assert _pass(settings).released == []  # no worker yet: both wait
    _worker(settings, "w1")
    sent: list = []
    _pass(settings, sent)
    assert sent == [(str(a), "w1")]
    assert _get(settings, a).released_to == "w1"
    _pass(settings, sent)  # the slot is taken (released, not yet claimed): nothing more
    assert len(sent) == 1
    with session_scope(settings.db_url) as s:  # claimed, then finished: the slot frees
        assert jobs_db.claim(s, a, "l", "w1", 10)
    assert _get(settings, a).released_to is None
    with session_scope(settings.db_url) as s:
        assert jobs_db.finish(s, a, "l", "succeeded")
    _pass(settings, sent)
    assert sent[-1] == (str(b), "w1")


def test_a_failed_send_leaves_the_job_waiting(settings) -> None:  # noqa: ANN001
    jid = _job(settings)
    _worker(settings, "w1")

    def down(_job_id: str, _worker_name: str) -> None:
        raise ConnectionError("broker unreachable")

    with session_scope(settings.db_url) as s, pytest.raises(dispatcher.BrokerDown):
        dispatcher.dispatch_once(s, settings, down)
    job = _get(settings, jid)
    assert (job.status, job.released_to) == ("queued", None)
    sent: list = []
    _pass(settings, sent)  # the broker is back
    assert sent == [(str(jid), "w1")]


def test_an_unclaimed_release_is_released_again(settings) -> None:  # noqa: ANN001
    jid = _job(settings)
    _worker(settings, "w1")
    sent: list = []
    _pass(settings, sent)
    with session_scope(settings.db_url) as s:  # the message was lost: nobody claims it
        s.execute(update(Job).where(Job.id == jid)
                  .values(released_at=utcnow() - timedelta(seconds=60)))
    result = _pass(settings, sent)
    assert result.expired == 1
    assert sent == [(str(jid), "w1"), (str(jid), "w1")]
    # one claim wins; the duplicate message is dropped
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "a", "w1", 10)
    with session_scope(settings.db_url) as s:
        assert not jobs_db.claim(s, jid, "b", "w1", 10)


def test_a_silent_workers_slots_stop_counting(settings) -> None:  # noqa: ANN001
    jid = _job(settings)
    _worker(settings, "old")
    with session_scope(settings.db_url) as s:
        s.execute(update(Worker).values(heartbeat_at=utcnow() - timedelta(seconds=60)))
    sent: list = []
    _pass(settings, sent)
    assert sent == []
    _worker(settings, "new")
    _pass(settings, sent)
    assert sent == [(str(jid), "new")]


def test_a_higher_priority_job_marks_the_running_one_for_preemption(settings) -> None:  # noqa: ANN001
    low = _job(settings, "bob", 1)
    _worker(settings, "w1")
    _pass(settings)
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, low, "l", "w1", 10)
    high = _job(settings, "carol", 9)
    result = _pass(settings)
    assert result.preempted == [str(low)]
    assert _get(settings, low).preempt_requested
    with session_scope(settings.db_url) as s:  # the worker sees it and checkpoints
        assert sched_db.preempt_flag(s, low, "l")
        assert sched_db.finish_preempted(s, low, "l", step=17)
    job = _get(settings, low)
    assert (job.status, job.preemptions, job.step, job.preempt_requested) == \
        ("queued", 1, 17, False)
    sent: list = []
    _pass(settings, sent)
    assert sent == [(str(high), "w1")]


def test_the_queue_view_lists_quota_reasons_in_release_order(settings) -> None:  # noqa: ANN001
    set_quota(settings.db_url, "alice", max_running=1)
    first = _job(settings)
    _job(settings)
    bob = _job(settings, "bob")
    _worker(settings, "w1", slots=2)
    sent: list = []
    _pass(settings, sent)
    assert sent == [(str(first), "w1"), (str(bob), "w1")]
    _job(settings, "carol", 5)  # released jobs are not running yet: nothing to preempt
    with session_scope(settings.db_url) as s:
        view = dispatcher.queue_view(s, settings)
    states = [(state, reason, job.owner) for state, reason, job in view.entries]
    assert states[:2] == [("released", "sent to w1", "alice"), ("released", "sent to w1", "bob")]
    assert ("waiting", "alice: 1 of 1 running", "alice") in states
    carol = [s for s in states if s[2] == "carol"][0]
    assert carol[1] == "no free cpu slot"
    assert [(w.name, busy, live) for w, busy, live in view.workers] == [("w1", 2, True)]


def test_running_time_accrues_to_its_owner(settings) -> None:  # noqa: ANN001
    jid = _job(settings)
    with session_scope(settings.db_url) as s:
        assert jobs_db.claim(s, jid, "l", "w1", 10)
    _pass(settings)  # the first pass starts alice's clock
    with session_scope(settings.db_url) as s:
        s.execute(update(UserUsage).values(as_of=utcnow() - timedelta(seconds=100)))
    _pass(settings)
    with session_scope(settings.db_url) as s:
        usage = sched_db.usage_now(s, utcnow(), settings.fair_share_half_life_h * 3600)
    assert 99 < usage["alice"] < 102


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_the_pass_reads_few_waiting_jobs_and_decides_as_with_all(fresh_backend, seed) -> None:  # noqa: ANN001, F811
    """A random queue (capped users, gpu/cpu/any workers, free and busy slots, released and
    stopping jobs, equal submit times): the pass, reading only each queue's first K waiting
    jobs, releases and preempts exactly what the decision on every waiting job does."""
    import random

    rng = random.Random(seed)
    settings = fresh_backend.settings(reaper_stale_after_s=600,
                                      preempt_for_fair_share=bool(seed % 2))
    users = [f"u{i}" for i in range(4)]
    for u in users:
        set_quota(settings.db_url, u, max_priority=rng.choice([None, 3, 6]),
                  max_running=rng.choice([None, None, 2]))
    workers = [(f"w{i}", rng.choice(["gpu", "cpu", "any"]), rng.randint(1, 2)) for i in range(5)]
    with session_scope(settings.db_url) as s:
        for name, kind, n in workers:
            workers_db.register(s, name, device_kind=kind, slots=n)
        at = utcnow()
        for _ in range(70):
            job = jobs_db.create_job(s, settings, tiny_spec(), owner=rng.choice(users),
                                     priority=rng.randint(0, 9),
                                     device=rng.choice(["cuda", "cpu"]))
            job.created_at = at + timedelta(seconds=rng.randint(0, 2))
        for name, kind, n in workers:  # some slots busy (claimed or released), some free
            for k in range(rng.randint(0, n)):
                job = jobs_db.create_job(s, settings, tiny_spec(), owner=rng.choice(users),
                                         priority=rng.randint(0, 9),
                                         device="cpu" if kind == "cpu" else "cuda")
                s.commit()
                if rng.random() < 0.2:
                    assert sched_db.release(s, job.id, name)
                    continue
                assert jobs_db.claim(s, job.id, f"l{name}{k}", name, 600)
                if rng.random() < 0.2:
                    assert sched_db.request_preempt(s, job.id)
    with session_scope(settings.db_url) as s:
        full, live = dispatcher.decide_now(s, settings)
        few, _ = dispatcher.decide_now(s, settings, heads_only=True)
        every, running, slots = sched_db.queue_state(s, settings.gpu_queue, live)
        read, _, _ = sched_db.queue_state(s, settings.gpu_queue, live, heads_only=True)
        policies = sched_db.user_policies(s)
    # the SQL's window (capped priority, submit time, id; K per kind) is the scheduler's
    assert sorted(read) == sorted(heads(every, running, slots, policies))
    assert len(few.order) < len(full.order)  # the limit took effect
    assert full.releases or full.preemptions
    assert (few.releases, few.preemptions) == (full.releases, full.preemptions)
    result = _pass(settings)
    assert (result.released, result.preempted) == (full.releases, full.preemptions)
