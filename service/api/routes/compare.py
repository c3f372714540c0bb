"""Metrics of several jobs aligned by step, for dashboards."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from service.api.deps import SessionDep
from service.api.schemas import CompareOut
from service.db.metrics import read_series
from service.db.models import Job

router = APIRouter(prefix="/api/v1", tags=["compare"])

MAX_JOBS = 50


def _split(csv: str) -> list[str]:
    return list(dict.fromkeys(s.strip() for s in csv.split(",") if s.strip()))


@router.get("/compare", response_model=CompareOut,
            responses={404: {"description": "A job does not exist."}})
def compare(
    session: SessionDep,
    jobs: Annotated[str, Query(description="Comma-separated job ids.")],
    keys: Annotated[str | None, Query(description="Comma-separated metric keys; default "
                                      "the keys every job has.")] = None,
    start_step: Annotated[int | None, Query(ge=0)] = None,
    end_step: Annotated[int | None, Query(ge=0)] = None,
    max_points: Annotated[int, Query(ge=2, le=10_000, description="Per job and key.")] = 500,
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
    rows = []
    for jid in ids:
        job = session.get(Job, jid)
        if job is None:
            raise HTTPException(404, f"no job {jid}")
        rows.append(job)
    if keys:
        wanted = _split(keys)
    else:
        common = set.intersection(*(set(j.latest_metrics or {}) for j in rows))
        wanted = sorted(common)
    raw: dict[str, dict[str, dict[int, float | None]]] = {}
    steps: set[int] = set()
    for job in rows:
        per_key = raw[str(job.id)] = {}
        for key in wanted:
            s = read_series(session, job.id, key, start_step, end_step, max_points)
            per_key[key] = dict(zip(s.steps, s.values, strict=True))
            steps.update(s.steps)
    axis = sorted(steps)
    series = {jid: {k: [pts.get(s) for s in axis] for k, pts in per_key.items()}
              for jid, per_key in raw.items()}
    return CompareOut(jobs=ids, keys=wanted, steps=axis, series=series)
