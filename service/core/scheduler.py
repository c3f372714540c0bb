"""The dispatch decision, a pure function: no database, no clock, no broker.

Given the waiting jobs, the running (and released, not yet claimed) jobs, the worker slots,
each user's policy and decayed usage, :func:`decide` returns which jobs to release to which
worker (in order), which running jobs to preempt, and for every waiting job the reason it
waits. :mod:`service.core.dispatcher` reads the state from the database, calls it and
applies the result; ``bench/scheduler.py`` and the fair-share simulation call it directly.

Release order (Slurm's multifactor priority reduced to its lab-sized core):

1. the user is under quota (``max_running`` per device kind; released jobs count);
2. priority, capped by the user's ``max_priority``;
3. fair share: ``(decayed usage + running jobs x slot_charge_s) / weight``, lowest first
   (the running term spreads one pass's free slots across users instead of handing them all
   to whoever was lowest at that instant);
4. submit time, then id.

Preemption: a waiting job of higher priority that finds no free slot of its kind preempts
the running preemptible job of the lowest priority (then of the user most over their share)
on a slot that suits it. With ``preempt_for_fair_share`` a user far under their share
(``FAIR_SHARE_FACTOR`` times) preempts a job of equal or lower priority too. A slot whose job
has already been asked to stop counts as about to free: it is not preempted twice.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

KINDS = ("gpu", "cpu")
FAIR_SHARE_FACTOR = 4.0  # "far under their share": the victim's share is this many times larger


class Waiting(NamedTuple):  # a tuple: ten thousand of them are built per decision
    id: str
    owner: str
    priority: int
    kind: str  # "gpu" | "cpu"
    submitted: float  # unix seconds


class Running(NamedTuple):
    """A running job, or a released one not yet claimed (it holds its slot all the same)."""

    id: str
    owner: str
    priority: int
    kind: str
    worker: str
    preemptible: bool = True
    preempt_requested: bool = False
    released: bool = False  # sent, not yet claimed: it holds the slot, nothing to preempt


@dataclass(frozen=True, slots=True)
class Slot:
    """A live worker: ``kind`` "gpu", "cpu" or "any" (serves both); ``capacity`` slots."""

    worker: str
    kind: str
    capacity: int


@dataclass(frozen=True, slots=True)
class Policy:
    max_running: int | None = None
    weight: float = 1.0
    max_priority: int | None = None
    max_queued: int | None = None  # checked at submit (service.core.jobs), not here


@dataclass
class Decision:
    releases: list[tuple[str, str]] = field(default_factory=list)  # (job id, worker), in order
    preemptions: list[str] = field(default_factory=list)  # running job ids to stop
    order: list[str] = field(default_factory=list)  # every waiting job, in release order
    reasons: dict[str, str] = field(default_factory=dict)  # waiting job id -> why it waits
    # waiting job id -> the running job it preempts (its reason names that job and owner,
    # which the queue listing hides from other users under read_scope=owner)
    preempting: dict[str, str] = field(default_factory=dict)


def decayed(usage_s: float, elapsed_s: float, half_life_s: float,
            running: int = 0) -> float:
    """Usage ``elapsed_s`` later: the old usage halves every ``half_life_s``; ``running``
    devices busy all along add their time."""
    factor = math.pow(0.5, max(elapsed_s, 0.0) / half_life_s) if half_life_s > 0 else 1.0
    return usage_s * factor + running * max(elapsed_s, 0.0)


def serves(slot_kind: str, job_kind: str) -> bool:
    return slot_kind == "any" or slot_kind == job_kind


def heads_needed(running: Iterable[Running], slots: Iterable[Slot]) -> dict[str, int]:
    """How many of each (user, kind) queue's first waiting jobs a pass's releases and
    preemptions depend on: K(kind) = the live slots serving the kind (a worker holding more
    jobs than its slots counts those), at least 1.

    Exact, not a heuristic: a queue's jobs are visited in the queue's own order (capped
    priority, submit time, id). Each release takes a free slot serving the kind and each
    preemption a running job on one (or a slot already stopping), so at most K of a queue's
    jobs do either, and they come first: after the first of its jobs that waits without
    effect, a later one of no higher priority is either behind it (``higher`` > 0) or hits
    the same no-victim memo, and no slot frees during a pass. The jobs past the K-th only add
    to the counts behind which lower jobs wait, and a lower job behind one of them is also
    behind the earlier job of that queue that waited (or there were no victims of the kind
    at all). The reasons and the order of the jobs past the K-th do need the full list
    (:func:`service.core.dispatcher.queue_view` reads it)."""
    kind_of = {s.worker: s.kind for s in slots}
    held: dict[str, int] = defaultdict(int)
    for r in running:
        held[r.worker] += 1
    depth = {k: 0 for k in KINDS}
    for s in slots:
        for k in KINDS:
            if serves(kind_of[s.worker], k):
                depth[k] += max(s.capacity, held[s.worker])
    return {k: max(n, 1) for k, n in depth.items()}


class _State:
    """The mutable bookkeeping of one decision."""

    def __init__(self, running: list[Running], slots: list[Slot],
                 policies: Mapping[str, Policy], usage: Mapping[str, float],
                 slot_charge_s: float):
        self.policies, self.usage, self.charge = policies, usage, slot_charge_s
        self.slot_kind = {s.worker: s.kind for s in slots}
        self.free = {s.worker: s.capacity for s in slots}
        self.n_running: dict[str, int] = defaultdict(int)
        self.n_kind: dict[tuple[str, str], int] = defaultdict(int)
        for r in running:
            self.n_running[r.owner] += 1
            self.n_kind[(r.owner, r.kind)] += 1
            if r.worker in self.free:
                self.free[r.worker] -= 1
        self.n_free = {k: sum(max(f, 0) for w, f in self.free.items()
                              if serves(self.slot_kind[w], k)) for k in KINDS}
        # running jobs that could make room, and slots already about to free
        live = [r for r in running if r.worker in self.slot_kind]
        self.victims = [r for r in live
                        if r.preemptible and not r.preempt_requested and not r.released]
        self.stopping = [self.slot_kind[r.worker] for r in live if r.preempt_requested]
        # (kind, priority[, owner]) that found no victim: victims only get fewer, and once a
        # job waits no slot frees in this pass, so shares stay put too
        self.no_victim: set[tuple] = set()

    def policy(self, user: str) -> Policy:
        return self.policies.get(user) or Policy()

    def share(self, user: str) -> float:
        weight = self.policy(user).weight or 1.0
        return (self.usage.get(user, 0.0) + self.n_running[user] * self.charge) / weight

    def priority(self, job: Waiting | Running) -> int:
        cap = self.policy(job.owner).max_priority
        return job.priority if cap is None else min(job.priority, cap)

    def over_quota(self, job: Waiting) -> str | None:
        cap = self.policy(job.owner).max_running
        n = self.n_kind[(job.owner, job.kind)]
        if cap is not None and n >= cap:
            return f"{job.owner}: {n} of {cap} running"
        return None

    def take_slot(self, kind: str) -> str | None:
        """A free slot for a job of ``kind``: a worker of exactly that kind first (keeps
        "any" workers for the other kind), the one with most free slots."""
        if self.n_free[kind] <= 0:
            return None
        best = None
        for worker, free in self.free.items():
            if free <= 0 or not serves(self.slot_kind[worker], kind):
                continue
            rank = (self.slot_kind[worker] == kind, free)
            if best is None or rank > best[0]:
                best = (rank, worker)
        if best is None:
            return None
        self.free[best[1]] -= 1
        for k in KINDS:
            if serves(self.slot_kind[best[1]], k):
                self.n_free[k] -= 1
        return best[1]

    def take_stopping(self, kind: str) -> bool:
        for i, slot_kind in enumerate(self.stopping):
            if serves(slot_kind, kind):
                del self.stopping[i]
                return True
        return False

    def pick_victim(self, job: Waiting, prio: int, fair_share: bool) -> Running | None:
        memo = (job.kind, prio, job.owner if fair_share else None)
        if memo in self.no_victim:
            return None
        mine = self.share(job.owner)
        best = None
        for r in self.victims:
            if not serves(self.slot_kind[r.worker], job.kind):
                continue
            theirs = self.share(r.owner)
            higher = self.priority(r) < prio
            unfair = (fair_share and self.priority(r) <= prio and r.owner != job.owner
                      and theirs > FAIR_SHARE_FACTOR * mine + self.charge)
            if not (higher or unfair):
                continue
            rank = (self.priority(r), -theirs, r.id)
            if best is None or rank < best[0]:
                best = (rank, r)
        if best is None:
            self.no_victim.add(memo)
            return None
        self.victims.remove(best[1])
        return best[1]


def decide(waiting: Iterable[Waiting], running: Iterable[Running], slots: Iterable[Slot],
           policies: Mapping[str, Policy], usage: Mapping[str, float], *,
           slot_charge_s: float = 3600.0, preempt_for_fair_share: bool = False) -> Decision:
    """Releases, preemptions, release order and reasons (see the module docstring)."""
    st = _State(list(running), list(slots), policies, usage, slot_charge_s)
    waiting = list(waiting)
    queues: dict[tuple[str, str], list[Waiting]] = defaultdict(list)
    if max(st.n_free.values()) > 0:
        for job in waiting:
            queues[(job.owner, job.kind)].append(job)
        for q in queues.values():  # each queue's head is its best job; pop from the end
            q.sort(key=lambda j: (-st.priority(j), j.submitted, j.id), reverse=True)

    def key(job: Waiting) -> tuple:
        return (-st.priority(job), st.share(job.owner), job.submitted, job.id)

    heap = [(key(q[-1]), qk) for qk, q in queues.items()] if max(st.n_free.values()) > 0 \
        else []
    heapq.heapify(heap)
    kinds_served = {k: any(serves(s, k) for s in st.slot_kind.values()) for k in KINDS}
    # kind -> {priority: jobs of it still waiting} (few distinct priorities: cheap to sum)
    unplaced: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    out = Decision()
    # phase 1, while a slot is free: shares move with every release, so a heap of each
    # (user, kind) queue's head, re-keyed lazily
    while heap and max(st.n_free.values()) > 0:
        k, qk = heapq.heappop(heap)
        q = queues[qk]
        job = q[-1]
        if key(job) != k:  # the owner's share moved since this entry was pushed
            heapq.heappush(heap, (key(job), qk))
            continue
        q.pop()
        out.order.append(job.id)
        blocked = st.over_quota(job)
        if blocked:  # the rest of this user's queue for this kind waits on the same quota
            out.reasons[job.id] = blocked
            for rest in reversed(q):
                out.order.append(rest.id)
                out.reasons[rest.id] = blocked
            q.clear()
            continue
        worker = st.take_slot(job.kind)
        if worker is not None:
            out.releases.append((job.id, worker))
            st.n_running[job.owner] += 1
            st.n_kind[(job.owner, job.kind)] += 1
        else:
            prio = st.priority(job)
            out.reasons[job.id] = _why_waiting(st, job, prio, unplaced[job.kind],
                                               kinds_served[job.kind],
                                               preempt_for_fair_share, out)
            unplaced[job.kind][prio] += 1
        if q:
            heapq.heappush(heap, (key(q[-1]), qk))
    # phase 2, every slot taken: nothing is released any more, so shares are fixed and the
    # rest is one sort (the common case of a long queue, kept cheap)
    rest = [j for q in queues.values() for j in q] if queues else waiting
    owners = {j.owner for j in rest}
    shares = {u: st.share(u) for u in owners}
    caps = {u: st.policy(u).max_priority for u in owners}
    keyed = sorted([(-j.priority if caps[j.owner] is None or j.priority < caps[j.owner]
                     else -caps[j.owner], shares[j.owner], j.submitted, j.id, j) for j in rest])
    quota: dict[tuple[str, str], str | None] = {}  # fixed now: one check per user and kind
    totals = {k: sum(unplaced[k].values()) for k in KINDS}
    reasons = out.reasons
    out.order.extend(t[3] for t in keyed)
    for negp, _share, _t, jid, job in keyed:
        kind = job.kind
        qk = (job.owner, kind)
        blocked = quota[qk] if qk in quota else quota.setdefault(qk, st.over_quota(job))
        if blocked:
            reasons[jid] = blocked
            continue
        ahead = unplaced[kind]
        higher = totals[kind] - ahead.get(-negp, 0)
        if higher and kinds_served[kind]:  # the common case of a long queue, inline
            reasons[jid] = f"behind {higher} job{'s' if higher != 1 else ''} of higher priority"
        else:
            reasons[jid] = _why_waiting(st, job, -negp, ahead, kinds_served[kind],
                                        preempt_for_fair_share, out)
        ahead[-negp] += 1
        totals[kind] += 1
    return out


def _why_waiting(st: _State, job: Waiting, prio: int, ahead: dict[int, int], served: bool,
                 fair_share: bool, out: Decision) -> str:
    if not served:
        return f"no {job.kind} worker"
    # jobs are visited in priority order, so every job still waiting ahead has a priority
    # at least this one's
    higher = sum(ahead.values()) - ahead.get(prio, 0)
    if higher:
        return f"behind {higher} job{'s' if higher != 1 else ''} of higher priority"
    if st.take_stopping(job.kind):
        return f"a preempted job is stopping to free a {job.kind} slot"
    victim = st.pick_victim(job, prio, fair_share)
    if victim is not None:
        out.preemptions.append(victim.id)
        out.preempting[job.id] = victim.id
        return f"preempting job {victim.id[:8]} of {victim.owner}"
    if ahead:
        return f"no free {job.kind} slot; {sum(ahead.values())} ahead"
    return f"no free {job.kind} slot"
