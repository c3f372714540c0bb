"""Sweeps: expanding a base spec over a grid (or a list of overrides) into one job per
point, sending them, cancelling them, and a sweep's progress, status and varied parameters.
Rows are read and written through :mod:`service.db.sweeps` and :mod:`service.db.jobs`."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from service.core import budget
from service.core.config import Settings
from service.core.datasets import UnsafeUserFile, confine_dataset
from service.core.jobs import Enqueue, check_queued_quota
from service.db import jobs as jobs_db
from service.db import sweeps as sweeps_db
from service.db.models import JOB_STATUSES, TERMINAL, Job, Sweep

log = logging.getLogger(__name__)


class SweepInvalid(ValueError):
    """The grid or a point is invalid; ``errors`` lists every problem as {field, message}."""

    def __init__(self, errors: list[dict[str, str]]):
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


@dataclass
class Progress:
    total: int
    counts: dict[str, int]
    finished: int
    fraction: float


def sweep_tag(sweep_id: uuid.UUID) -> str:
    return f"sweep:{sweep_id}"


def progress(jobs: list[Job]) -> Progress:
    """Jobs per status, and optimizer steps done / planned (finished jobs count as done)."""
    counts = {s: 0 for s in JOB_STATUSES}
    done = planned = 0.0
    for j in jobs:
        counts[j.status] += 1
        if j.status in TERMINAL:
            done, planned = done + 1, planned + 1
        elif j.total_steps:
            done, planned = done + min(1.0, (j.step or 0) / j.total_steps), planned + 1
        else:
            planned += 1
    finished = sum(counts[s] for s in TERMINAL)
    return Progress(total=len(jobs), counts=counts, finished=finished,
                    fraction=done / planned if planned else 0.0)


def status(sweep: Sweep, p: Progress) -> str:
    if p.finished == p.total:
        return "cancelled" if sweep.cancel_requested else "finished"
    if p.counts["running"] or p.finished:
        return "running"
    return "queued"


def varied(sweep: Sweep) -> list[str]:
    """The dotted paths the sweep varies, in the order given."""
    if sweep.grid:
        return list(sweep.grid)
    seen: dict[str, None] = {}
    for o in sweep.overrides or []:
        seen.update(dict.fromkeys(o))
    return list(seen)


def _resolved(base: dict[str, Any]) -> dict[str, Any]:
    """The base with its defaults filled in (so ``kl.schedule.beta`` alone can vary the
    default constant schedule); an invalid base is passed as given, for build_sweep to name
    its bad fields as ``base.<field>``."""
    from vae_engine.errors import SpecError
    from vae_engine.spec import parse_spec

    try:
        return parse_spec(base).model_dump(mode="json")
    except SpecError:
        return base


def _points(settings: Settings, base: dict[str, Any], grid: dict[str, Any] | None,
            overrides: list[Any] | None) -> list[dict[str, Any]]:
    """The sweep's points with confined specs; raises :class:`SweepInvalid`."""
    from vae_engine.errors import SpecError
    from vae_engine.spec import build_sweep, parse_spec

    try:
        points = build_sweep(_resolved(base), grid=grid, overrides=overrides)
    except SpecError as exc:
        raise SweepInvalid([{"field": e["field"], "message": e["message"]}
                            for e in exc.errors]) from None
    bad: dict[tuple[str, str], list[int]] = {}  # (field, message) -> the refused points
    for pt in points:
        try:
            budget.check(parse_spec(pt["spec"]), settings)
        except SpecError as exc:
            for e in exc.errors:
                bad.setdefault((e["field"], e["message"]), []).append(pt["index"])
        try:
            pt["spec"] = confine_dataset(pt["spec"], settings.datasets)
        except UnsafeUserFile as exc:
            bad.setdefault((exc.field, str(exc)), []).append(pt["index"])
    if bad:
        raise SweepInvalid([
            {"field": f"spec.{field}",
             "message": f"point{'s' if len(ix) > 1 else ''} {', '.join(map(str, ix))}: {msg}"}
            for (field, msg), ix in bad.items()
        ])
    return points


def create(session: Session, settings: Settings, enqueue: Enqueue, *, name: str | None,
           owner: str, base: dict[str, Any], grid: dict[str, Any] | None,
           overrides: list[Any] | None, tags: list[str], priority: int,
           device: str) -> tuple[Sweep, list[Job]]:
    """Record the sweep and its jobs as waiting (they count against ``owner`` like any job)
    and wake the dispatcher. Raises :class:`SweepInvalid` or :class:`QuotaExceeded`."""
    points = _points(settings, base, grid, overrides)
    check_queued_quota(session, settings, owner, device, adding=len(points))
    sweep = sweeps_db.create_sweep(
        session, name=name or str(base.get("name") or "sweep"), owner=owner, base=base,
        grid=grid, overrides=overrides, n_points=len(points))
    all_tags = sorted({*tags, sweep_tag(sweep.id)})
    from service.core.inputs import checksums

    jobs = [jobs_db.create_job(session, settings, pt["spec"], owner=owner, priority=priority,
                               tags=all_tags, device=device,
                               sweep=(sweep.id, pt["index"], pt["overrides"]),
                               input_sha256=checksums(pt["spec"], settings.datasets))
            for pt in points]
    session.commit()
    for job in jobs:
        enqueue(job)
    return sweep, jobs


def cancel(session: Session, sweep: Sweep) -> list[Job]:
    """Queued jobs end ``cancelled`` at once; running ones stop at their next step. Returns
    the sweep's jobs as they are now."""
    sweeps_db.request_cancel(session, sweep)
    for job in jobs_db.sweep_jobs(session, sweep.id):
        if job.status not in TERMINAL:
            jobs_db.request_cancel(session, job.id)
    session.commit()
    session.expire_all()
    return jobs_db.sweep_jobs(session, sweep.id)
