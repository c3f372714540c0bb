"""The dispatch decision (service.core.scheduler.decide), a pure function: quotas, priority,
fair share, reasons and preemption, and a 100-hour fair-share simulation on a fake clock."""

from __future__ import annotations

import random

import pytest

from service.core.scheduler import (
    KINDS,
    Policy,
    Running,
    Slot,
    Waiting,
    decayed,
    decide,
    heads_needed,
)

HOUR = 3600.0


def waiting(owner: str, n: int, *, start: int = 0, priority: int = 0, kind: str = "cpu",
            t0: float = 0.0) -> list[Waiting]:
    return [Waiting(f"{owner}{start + i}", owner, priority, kind, t0 + start + i)
            for i in range(n)]


def slots(n: int, kind: str = "cpu") -> list[Slot]:
    return [Slot(f"w{i}", kind, 1) for i in range(n)]


def test_quota_holds_back_a_user_and_lets_the_next_user_in() -> None:
    d = decide(waiting("alice", 3) + waiting("bob", 1, t0=10), [], slots(2),
               {"alice": Policy(max_running=1)}, {})
    released = [j for j, _ in d.releases]
    assert released == ["alice0", "bob0"]
    assert d.reasons["alice1"] == "alice: 1 of 1 running"
    assert d.reasons["alice2"] == "alice: 1 of 1 running"
    assert set(d.order) == {"alice0", "alice1", "alice2", "bob0"}


def test_quota_counts_running_jobs_per_device_kind() -> None:
    running = [Running("a-gpu", "alice", 0, "gpu", "g0")]
    d = decide(waiting("alice", 1, kind="gpu") + waiting("alice", 1, start=5, kind="cpu"),
               running, [Slot("g0", "gpu", 1), Slot("g1", "gpu", 1), Slot("c0", "cpu", 1)],
               {"alice": Policy(max_running=1)}, {})
    assert d.releases == [("alice5", "c0")]
    assert d.reasons["alice0"] == "alice: 1 of 1 running"


def test_priority_first_capped_by_the_users_max_priority() -> None:
    jobs = [Waiting("low", "bob", 0, "cpu", 0), Waiting("high", "carol", 9, "cpu", 5),
            Waiting("capped", "alice", 9, "cpu", 1)]
    d = decide(jobs, [], slots(1), {"alice": Policy(max_priority=0)}, {})
    assert d.releases == [("high", "w0")]
    assert d.order == ["high", "low", "capped"]  # capped to 0: then fair share, then age
    assert d.reasons["low"] == "no free cpu slot"
    assert d.reasons["capped"] == "no free cpu slot; 1 ahead"


def test_reasons_name_the_jobs_ahead_and_a_missing_device_kind() -> None:
    jobs = waiting("a", 3, priority=5) + waiting("b", 1, start=9) + \
        waiting("c", 1, kind="gpu", start=20)
    d = decide(jobs, [Running("r", "z", 5, "cpu", "w0", preemptible=False)], slots(1), {}, {})
    assert d.releases == [] and d.preemptions == []
    assert d.reasons["b9"] == "behind 3 jobs of higher priority"
    assert d.reasons["c20"] == "no gpu worker"
    assert d.reasons["a0"] == "no free cpu slot"


def test_fair_share_orders_equal_priorities_by_usage_over_weight() -> None:
    jobs = waiting("heavy", 2) + waiting("light", 2, start=10)
    d = decide(jobs, [], slots(1), {"heavy": Policy(weight=2.0)},
               {"heavy": 10 * HOUR, "light": 6 * HOUR})  # 5 h per weight vs 6 h
    assert d.releases == [("heavy0", "w0")]


def test_a_higher_priority_job_preempts_the_lowest_priority_preemptible_job() -> None:
    running = [Running("keep", "alice", 0, "cpu", "w0", preemptible=False),
               Running("mid", "bob", 3, "cpu", "w1"), Running("low", "carol", 1, "cpu", "w2")]
    d = decide([Waiting("urgent", "dave", 8, "cpu", 0)], running, slots(3), {}, {})
    assert d.preemptions == ["low"]
    assert d.reasons["urgent"].startswith("preempting job low")
    # asked already: the slot counts as about to free, nothing else is preempted
    running[2] = Running("low", "carol", 1, "cpu", "w2", preempt_requested=True)
    d = decide([Waiting("urgent", "dave", 8, "cpu", 0)], running, slots(3), {}, {})
    assert d.preemptions == []
    assert "preempted job is stopping" in d.reasons["urgent"]


def test_equal_priority_preempts_only_for_fair_share_when_enabled() -> None:
    running = [Running(f"hog{i}", "hog", 0, "cpu", f"w{i}") for i in range(2)]
    jobs = [Waiting("new", "newcomer", 0, "cpu", 0)]
    usage = {"hog": 100 * HOUR}
    assert decide(jobs, running, slots(2), {}, usage).preemptions == []
    d = decide(jobs, running, slots(2), {}, usage, preempt_for_fair_share=True)
    assert len(d.preemptions) == 1 and d.preemptions[0].startswith("hog")


def test_decayed_usage_halves_every_half_life() -> None:
    assert decayed(100.0, 168 * HOUR, 168 * HOUR) == pytest.approx(50.0)
    assert decayed(0.0, 10.0, 168 * HOUR, running=2) == pytest.approx(20.0)


def simulate(weights: dict[str, float], hours: float, n_slots: int, *, seed: int,
             arrivals: dict[str, float] | None = None) -> tuple[dict[str, float],
                                                                dict[str, float]]:
    """Users with endless backlogs on ``n_slots`` slots for ``hours``; jobs last 0.5 to 1.5 h
    (seeded). A pass every simulated minute, as the dispatcher's loop would run. Returns the
    device-hours each user received and when each user's first job started."""
    rng = random.Random(seed)
    policies = {u: Policy(weight=w) for u, w in weights.items()}
    arrivals = arrivals or {}
    usage = dict.fromkeys(weights, 0.0)
    served = dict.fromkeys(weights, 0.0)
    first_start: dict[str, float] = {}
    running: dict[str, tuple[Running, float]] = {}  # id -> (job, end time)
    pending: list[Waiting] = []
    now, step, seq = 0.0, 60.0, 0
    while now < hours * HOUR:
        running = {j: (r, end) for j, (r, end) in running.items() if end > now}
        for user in weights:  # an endless backlog: always 20 waiting once the user arrives
            if now >= arrivals.get(user, 0.0):
                for _ in range(20 - sum(w.owner == user for w in pending)):
                    seq += 1
                    pending.append(Waiting(f"{user}-{seq}", user, 0, "cpu", now + seq * 1e-6))
        d = decide(pending, [r for r, _ in running.values()], slots(n_slots), policies,
                   usage, slot_charge_s=HOUR)
        started = dict(d.releases)
        for w in pending:
            if w.id in started:
                running[w.id] = (Running(w.id, w.owner, 0, "cpu", started[w.id]),
                                 now + rng.uniform(0.5, 1.5) * HOUR)
                first_start.setdefault(w.owner, now)
        pending = [w for w in pending if w.id not in started]
        counts = {u: sum(r.owner == u for r, _ in running.values()) for u in weights}
        for user in weights:
            usage[user] = decayed(usage[user], step, 168 * HOUR, counts[user])
            served[user] += counts[user] * step / HOUR
        now += step
    return served, first_start


def test_fair_share_over_100_simulated_hours_gives_device_hours_in_ratio_to_weights() -> None:
    served, _ = simulate({"a": 1.0, "b": 1.0, "c": 2.0}, 100, 8, seed=0)
    total = sum(served.values())
    assert total == pytest.approx(800, rel=0.02)  # the 8 slots never idle
    for user, weight in (("a", 1), ("b", 1), ("c", 2)):
        expected = total * weight / 4
        assert abs(served[user] - expected) <= 0.10 * expected, (user, served)


def test_a_late_user_runs_within_one_job_length() -> None:
    served, first = simulate({"a": 1.0, "b": 1.0, "c": 2.0, "late": 1.0}, 100, 8, seed=1,
                             arrivals={"late": 50 * HOUR})
    assert first["late"] - 50 * HOUR <= 1.5 * HOUR  # the longest job in the simulation
    assert served["late"] > 0


def random_queue(seed: int) -> tuple[list, list, list, dict, dict]:
    """Waiting, running (some released, some stopping, some not preemptible), slots of every
    kind (some free, one holding more jobs than its slots), capped users, usage; equal submit
    times so that the id breaks ties."""
    rng = random.Random(seed)
    users = [f"u{i}" for i in range(rng.randint(1, 6))]
    policies = {u: Policy(max_running=rng.choice([None, None, 1, 2, 5]),
                          weight=rng.choice([1.0, 2.0]),
                          max_priority=rng.choice([None, None, 2, 5, 7])) for u in users}
    usage = {u: rng.uniform(0, 5 * HOUR) for u in users if rng.random() < 0.8}
    sl = [Slot(f"w{i}", rng.choice(["gpu", "gpu", "cpu", "any"]), rng.randint(1, 3))
          for i in range(rng.randint(1, 6))]
    running = []
    for s in sl:
        for j in range(rng.randint(0, s.capacity + (1 if rng.random() < 0.1 else 0))):
            kind = s.kind if s.kind != "any" else rng.choice(KINDS)
            running.append(Running(f"r{s.worker}.{j}", rng.choice(users), rng.randint(0, 9),
                                   kind, s.worker, rng.random() < 0.8, rng.random() < 0.15,
                                   rng.random() < 0.15))
    wait = [Waiting(f"j{rng.randrange(10**6):06d}.{i}", rng.choice(users), rng.randint(0, 9),
                    rng.choice(KINDS), float(rng.randint(0, 40)))
            for i in range(rng.randint(0, 120))]
    return wait, running, sl, policies, usage


def heads(wait: list[Waiting], running: list, sl: list, policies: dict) -> list[Waiting]:
    """What the dispatch pass reads (service.db.scheduling.queue_state, heads_only)."""
    depth = heads_needed(running, sl)

    def cap(j: Waiting) -> int:
        mp = policies[j.owner].max_priority
        return j.priority if mp is None else min(j.priority, mp)

    rank: dict[tuple, int] = {}
    out = []
    for j in sorted(wait, key=lambda j: (-cap(j), j.submitted, j.id)):
        n = rank[(j.owner, j.kind)] = rank.get((j.owner, j.kind), 0) + 1
        if n <= depth[j.kind]:
            out.append(j)
    return out


@pytest.mark.parametrize("fair", [False, True])
def test_the_first_k_waiting_jobs_of_each_queue_make_the_same_pass(fair: bool) -> None:
    truncated = 0
    for seed in range(400):
        wait, running, sl, policies, usage = random_queue(seed)
        few = heads(wait, running, sl, policies)
        truncated += len(few) < len(wait)
        full = decide(wait, running, sl, policies, usage, preempt_for_fair_share=fair)
        part = decide(few, running, sl, policies, usage, preempt_for_fair_share=fair)
        assert (part.releases, part.preemptions) == (full.releases, full.preemptions), seed
    assert truncated > 100
