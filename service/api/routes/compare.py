"""Metrics of several jobs aligned by step, for dashboards."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from service.api.deps import CurrentUser, SessionDep, SettingsDep, readable
from service.api.params import Step
from service.api.responses import NOT_FOUND
from service.api.schemas import CompareOut
from service.core.metrics import JobNotFound
from service.core.metrics import compare as align
from service.db import jobs as jobs_db

router = APIRouter(prefix="/api/v1", tags=["compare"],
                   responses={**NOT_FOUND})

MAX_JOBS = 50


def _split(csv: str) -> list[str]:
    return list(dict.fromkeys(s.strip() for s in csv.split(",") if s.strip()))


@router.get("/compare", response_model=CompareOut,
            responses={404: {"description": "A job does not exist."}})
def compare(
    session: SessionDep, settings: SettingsDep, user: CurrentUser,
    jobs: Annotated[str, Query(description="Comma-separated job ids.")],
    keys: Annotated[str | None, Query(description="Comma-separated metric keys; default "
                                      "the keys every job has.")] = None,
    start_step: Annotated[Step | None, Query()] = None,
    end_step: Annotated[Step | None, Query()] = None,
    max_points: Annotated[int, Query(ge=2, le=10_000, description="Per job and key.")] = 500,
    with_ts: Annotated[bool, Query(description=(
        "Also return `ts`: each point's wall time (unix seconds), aligned like `series`."
    ))] = False,
) -> CompareOut:
    """One step axis (the union of every series' steps) with each job's values on it (null
    where that job has no point at that step). Series are downsampled per job and key as in
    ``GET /jobs/{id}/metrics`` (bucketed min/max keeps spikes)."""
    ids = []
    for raw in _split(jobs):
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            raise HTTPException(422, [{"field": "jobs", "message": f"not a job id: {raw!r}"}]
                                ) from None
    if not ids or len(ids) > MAX_JOBS:
        raise HTTPException(422, [{"field": "jobs", "message": f"give 1..{MAX_JOBS} job ids"}])
    if settings.read_scope != "lab":  # another's job is as absent as it is from GET /jobs/{id}
        rows, _ = jobs_db.list_jobs(session, ids=ids, limit=len(ids))
        for job in rows:
            if not readable(user, settings, job.owner):
                raise HTTPException(404, f"no job {job.id}")
    try:
        wanted, axis, series, ts = align(session, ids, _split(keys) if keys else None,
                                         start_step, end_step, max_points, with_ts)
    except JobNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return CompareOut(jobs=ids, keys=wanted, steps=axis, series=series, ts=ts)
