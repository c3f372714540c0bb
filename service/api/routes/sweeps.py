"""Sweeps: a base spec expanded over a grid (or a list of overrides) into one job per point,
their progress, cancelling them, and the rate-distortion frontier of the finished ones."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy import func, select

from service.api.deps import CurrentUser, EnqueueDep, SessionDep, SettingsDep, SweepDep
from service.api.schemas import (
    FrontierOut,
    SweepCreate,
    SweepDetail,
    SweepJob,
    SweepList,
    SweepProgress,
    SweepSummary,
    aware,
    job_summary,
)
from service.core import jobs as jobops
from service.core.datasets import UnsafeUserFile, confine_dataset
from service.db.models import JOB_STATUSES, TERMINAL, Job, Sweep

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/sweeps", tags=["sweeps"])


def sweep_tag(sweep_id: uuid.UUID) -> str:
    return f"sweep:{sweep_id}"


def _jobs(session: Any, sweep_id: uuid.UUID) -> list[Job]:
    return list(session.scalars(
        select(Job).where(Job.sweep_id == sweep_id).order_by(Job.sweep_index, Job.created_at)
    ))


def _progress(jobs: list[Job]) -> SweepProgress:
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
    return SweepProgress(total=len(jobs), counts=counts, finished=finished,
                         fraction=done / planned if planned else 0.0)


def _status(sweep: Sweep, p: SweepProgress) -> str:
    if p.finished == p.total:
        return "cancelled" if sweep.cancel_requested else "finished"
    if p.counts["running"] or p.finished:
        return "running"
    return "queued"


def _varied(sweep: Sweep) -> list[str]:
    if sweep.grid:
        return list(sweep.grid)
    seen: dict[str, None] = {}
    for o in sweep.overrides or []:
        seen.update(dict.fromkeys(o))
    return list(seen)


def _summary(sweep: Sweep, jobs: list[Job]) -> dict[str, Any]:
    p = _progress(jobs)
    return dict(id=sweep.id, name=sweep.name, owner=sweep.owner, status=_status(sweep, p),
                created_at=aware(sweep.created_at), cancel_requested=sweep.cancel_requested,
                varied=_varied(sweep), progress=p)


def _detail(sweep: Sweep, jobs: list[Job]) -> SweepDetail:
    return SweepDetail(
        **_summary(sweep, jobs), base=sweep.base, grid=sweep.grid, overrides=sweep.overrides,
        jobs=[SweepJob(index=j.sweep_index, params=j.sweep_params or {},
                       job=job_summary(j)) for j in jobs],
    )


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


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SweepDetail,
             responses={422: {"description": "Every bad grid path or field is listed "
                              "(grid.kl.schedule.betaa, base.model.latent_dim...)."}})
def create_sweep(body: SweepCreate, session: SessionDep, settings: SettingsDep,
                 owner: CurrentUser, enqueue: EnqueueDep) -> SweepDetail:
    from vae_engine.errors import SpecError
    from vae_engine.spec import build_sweep

    try:
        points = build_sweep(_resolved(body.base), grid=body.grid, overrides=body.overrides)
    except SpecError as exc:
        raise HTTPException(422, [{"field": e["field"], "message": e["message"]}
                                  for e in exc.errors]) from None
    bad: dict[tuple[str, str], list[int]] = {}  # (field, message) -> the refused points
    for pt in points:
        try:
            pt["spec"] = confine_dataset(pt["spec"], settings.datasets)
        except UnsafeUserFile as exc:
            bad.setdefault((exc.field, str(exc)), []).append(pt["index"])
    if bad:
        raise HTTPException(422, [
            {"field": f"spec.{field}",
             "message": f"point{'s' if len(ix) > 1 else ''} "
                        f"{', '.join(map(str, ix))}: {msg}"}
            for (field, msg), ix in bad.items()
        ])
    sweep = Sweep(id=uuid.uuid4(), name=body.name or str(body.base.get("name") or "sweep"),
                  owner=owner, base=body.base, grid=body.grid, overrides=body.overrides,
                  n_points=len(points), cancel_requested=False)
    session.add(sweep)
    session.flush()
    tags = sorted({*body.tags, sweep_tag(sweep.id)})
    jobs = []
    for pt in points:
        job = jobops.create_job(session, settings, pt["spec"], owner=owner,
                                priority=body.priority, tags=tags,
                                device=body.resources.device)
        job.sweep_id, job.sweep_index, job.sweep_params = sweep.id, pt["index"], pt["overrides"]
        jobs.append(job)
    session.commit()
    for job in jobs:
        try:
            enqueue(job)
        except Exception as exc:  # noqa: BLE001 - the broker is down: keep the records
            log.exception("enqueue failed for job %s of sweep %s", job.id, sweep.id)
            for j in jobs:
                if j.status == "queued":
                    jobops.request_cancel(session, j.id)
            session.commit()
            raise HTTPException(503, f"the job queue is unavailable: {exc}; the sweep's "
                                "unsent jobs were cancelled") from exc
    return _detail(sweep, jobs)


@router.get("", response_model=SweepList)
def list_sweeps(
    session: SessionDep, owner: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SweepList:
    q = select(Sweep)
    if owner:
        q = q.where(Sweep.owner == owner)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(
        q.order_by(Sweep.created_at.desc(), Sweep.id).limit(limit).offset(offset)).all()
    return SweepList(items=[SweepSummary(**_summary(s, _jobs(session, s.id))) for s in rows],
                     total=total, limit=limit, offset=offset)


@router.get("/{sweep_id}", response_model=SweepDetail)
def get_sweep_detail(sweep: SweepDep, session: SessionDep) -> SweepDetail:
    return _detail(sweep, _jobs(session, sweep.id))


@router.post("/{sweep_id}/cancel", response_model=SweepDetail)
def cancel_sweep(sweep: SweepDep, session: SessionDep) -> SweepDetail:
    """Queued jobs end ``cancelled`` at once; running ones stop at their next step."""
    sweep.cancel_requested = True
    for job in _jobs(session, sweep.id):
        if job.status not in TERMINAL:
            jobops.request_cancel(session, job.id)
    session.commit()
    session.expire_all()
    return _detail(sweep, _jobs(session, sweep.id))


# ------------------------------------------------------------------ the frontier


def frontier_rows(jobs: list[Job]) -> list[dict[str, Any]]:
    """One row per succeeded job with a summary: (R, D, ELBO, IWAE) and its varied params."""
    from service.core.frontier import rd_row

    rows = []
    for j in jobs:
        if j.status == "succeeded" and j.summary:
            row = rd_row(str(j.id), j.sweep_params or {}, j.summary)
            row["iwae_k"] = j.summary.get("iwae_k")
            rows.append(row)
    return rows


@router.get("/{sweep_id}/rate-distortion", response_model=FrontierOut,
            responses={200: {"content": {"text/csv": {}, "image/png": {}, "image/svg+xml": {}},
                             "description": "JSON, or the table / the plot."}})
def sweep_frontier(
    sweep: SweepDep, session: SessionDep,
    format: Literal["json", "csv", "png", "svg"] = "json",  # noqa: A002 - the query name
    aggregate: Annotated[Literal["auto", "true", "false"], Query(
        description="csv/png/svg: mean ± spread per configuration across seeds "
                    "(auto: where seeds vary)")] = "auto",
) -> Any:
    """Every finished job's (R, D, ELBO, IWAE) with its varied parameters and whether it is
    on the empirical Pareto frontier; where seeds vary, also per configuration the mean and
    spread across seeds. ``format=png|svg`` draws the plane (iso-ELBO lines of slope −1, the
    frontier, labels); ``format=csv`` for notebooks."""
    from service.core.frontier import aggregate_seeds, frontier_table, seeds_vary

    jobs = _jobs(session, sweep.id)
    rows = frontier_rows(jobs)
    vary = seeds_vary(rows)
    points = frontier_table(rows)
    aggregated = frontier_table(aggregate_seeds(rows)) if vary else None
    if format == "json":
        return FrontierOut(sweep_id=sweep.id, finished=len(rows), total=len(jobs),
                           seeds_vary=vary, points=points, aggregated=aggregated)
    use_agg = aggregate == "true" or (aggregate == "auto" and vary)
    table = frontier_table(aggregate_seeds(rows)) if use_agg else points
    if format == "csv":
        from service.core.frontier import to_csv

        return Response(to_csv(table), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="sweep-{sweep.id}.csv"'})
    from service.core.frontier_plot import plot_rd

    title = f"{sweep.name}: {len(rows)}/{len(jobs)} runs" + (", mean ± std over seeds"
                                                             if use_agg else "")
    image = plot_rd(table, fmt=format, title=title)
    return Response(image, media_type="image/png" if format == "png" else "image/svg+xml")
