"""Metric series of a job, downsampled so that spikes survive (bucketed min/max)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.api.deps import JobDep, SessionDep
from service.api.params import Step
from service.api.responses import BY_ID
from service.api.schemas import MetricsOut, Series
from service.core.metrics import job_series

router = APIRouter(prefix="/api/v1/jobs", tags=["metrics"],
                   responses={**BY_ID})


@router.get("/{job_id}/metrics", response_model=MetricsOut)
def get_metrics(
    job: JobDep,
    session: SessionDep,
    keys: Annotated[
        str | None, Query(description="Comma-separated keys; default all of the job's keys.")
    ] = None,
    start_step: Annotated[Step | None, Query()] = None,
    end_step: Annotated[Step | None, Query()] = None,
    max_points: Annotated[int, Query(ge=2, le=100_000, description="Per key.")] = 500,
    with_ts: Annotated[bool, Query(description=(
        "Also return `ts`: each point's wall time (unix seconds, when the worker wrote its "
        "batch), for charts with wall time on the x-axis."))] = False,
) -> MetricsOut:
    wanted = [k for k in (s.strip() for s in keys.split(",")) if k] if keys else None
    out = [Series(key=key, steps=s.steps, values=s.values, points_in_range=s.points_in_range,
                  downsampled=s.downsampled, ts=s.ts)
           for key, s in job_series(session, job, wanted, start_step, end_step, max_points,
                                    with_ts)]
    return MetricsOut(job_id=job.id, max_points=max_points, series=out)
