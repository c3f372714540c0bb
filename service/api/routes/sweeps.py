"""Sweeps: a base spec expanded over a grid (or a list of overrides) into one job per point,
their progress, cancelling them, and the rate-distortion frontier of the finished ones."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status

from service.api.deps import (
    CurrentUser,
    EnqueueDep,
    SessionDep,
    SettingsDep,
    SweepDep,
    owner_or_admin,
)
from service.api.params import Offset
from service.api.responses import BY_ID, QUEUE_DOWN, invalid
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
from service.core import access
from service.core import sweeps as sweepops
from service.core.jobs import QuotaExceeded
from service.core.uploads import name_uploaded
from service.db import jobs as jobs_db
from service.db import sweeps as sweeps_db
from service.db.models import Job, Sweep

router = APIRouter(prefix="/api/v1/sweeps", tags=["sweeps"])


def _summary(sweep: Sweep, jobs: list[Job]) -> dict[str, Any]:
    p = sweepops.progress(jobs)
    return dict(id=sweep.id, name=sweep.name, owner=sweep.owner,
                status=sweepops.status(sweep, p), created_at=aware(sweep.created_at),
                cancel_requested=sweep.cancel_requested, varied=sweepops.varied(sweep),
                progress=SweepProgress(**vars(p)))


def _detail(sweep: Sweep, jobs: list[Job]) -> SweepDetail:
    return SweepDetail(
        **_summary(sweep, jobs), base=sweep.base, grid=sweep.grid, overrides=sweep.overrides,
        jobs=[SweepJob(index=j.sweep_index, params=j.sweep_params or {},
                       job=job_summary(j)) for j in jobs],
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SweepDetail,
             responses={**invalid("Every bad grid path or field is listed "
                               "(grid.kl.schedule.betaa, base.model.latent_dim...)."),
                        **QUEUE_DOWN})
def create_sweep(body: SweepCreate, session: SessionDep, settings: SettingsDep,
                 user: CurrentUser, enqueue: EnqueueDep) -> SweepDetail:
    try:
        sweep, jobs = sweepops.create(
            session, settings, enqueue, name=body.name, owner=user.name,
            base=name_uploaded(session, settings, body.base),
            grid=body.grid, overrides=body.overrides, tags=body.tags, priority=body.priority,
            device=body.resources.device)
    except sweepops.SweepInvalid as exc:
        raise HTTPException(422, exc.errors) from None
    except QuotaExceeded as exc:
        raise HTTPException(429, str(exc)) from None
    return _detail(sweep, jobs)


@router.get("", response_model=SweepList)
def list_sweeps(
    session: SessionDep, settings: SettingsDep, user: CurrentUser, owner: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[Offset, Query()] = 0,
) -> SweepList:
    rows, total = sweeps_db.list_sweeps(
        session, owner=access.list_owner(user, owner, settings.read_scope), limit=limit,
        offset=offset)
    return SweepList(
        items=[SweepSummary(**_summary(s, jobs_db.sweep_jobs(session, s.id))) for s in rows],
        total=total, limit=limit, offset=offset)


@router.get("/{sweep_id}", response_model=SweepDetail, responses=BY_ID)
def get_sweep_detail(sweep: SweepDep, session: SessionDep) -> SweepDetail:
    return _detail(sweep, jobs_db.sweep_jobs(session, sweep.id))


@router.post("/{sweep_id}/cancel", response_model=SweepDetail, responses=BY_ID)
def cancel_sweep(sweep: SweepDep, session: SessionDep, user: CurrentUser) -> SweepDetail:
    """Queued jobs end ``cancelled`` at once; running ones stop at their next step. Its
    owner or an admin."""
    owner_or_admin(user, sweep.owner, "cancel", "sweep")
    return _detail(sweep, sweepops.cancel(session, sweep))


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
                             "description": "JSON, or the table / the plot."}, **BY_ID})
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

    jobs = jobs_db.sweep_jobs(session, sweep.id)
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
