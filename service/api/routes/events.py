"""Server-Sent Events: a job's status changes and new metric points, live.

Events: ``status`` (the job's status and progress; sent on connect and on every change),
``metrics`` (one per batch the worker flushed; its ``id`` is the batch's ``ts``) and
``end`` (the job finished and every point was sent). Reconnecting with ``Last-Event-ID``
resumes after that batch: nothing is skipped or sent twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from service.api.deps import JobDep, SettingsDep
from service.api.schemas import progress_of
from service.db import jobs as jobs_db
from service.db.metrics import batches_after
from service.db.models import TERMINAL
from service.db.session import session_scope

router = APIRouter(prefix="/api/v1/jobs", tags=["events"])

POLL_S = 0.5
KEEPALIVE_S = 15.0
BATCHES_PER_POLL = 50


def _poll(url: str, job_id: uuid.UUID, cursor: float):  # noqa: ANN202
    with session_scope(url) as s:
        job = jobs_db.get_job(s, job_id)
        status = {
            "status": job.status, "error": job.error, "attempts": job.attempts,
            "cancel_requested": job.cancel_requested,
            "progress": progress_of(job).model_dump(),
        }
        batches, more = batches_after(s, job_id, cursor, BATCHES_PER_POLL)
    return status, batches, more


def _event(kind: str, data: dict, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n"


@router.get("/{job_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def job_events(
    job: JobDep,
    request: Request,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    try:
        cursor = float(last_event_id) if last_event_id else 0.0
    except ValueError:
        cursor = 0.0
    job_id, url = job.id, settings.db_url

    async def stream() -> AsyncIterator[str]:
        nonlocal cursor
        last_status = None
        idle = 0.0
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            status, batches, more = await anyio.to_thread.run_sync(_poll, url, job_id, cursor)
            if status != last_status:
                last_status = status
                yield _event("status", status)
                idle = 0.0
            for ts, points in batches:
                cursor = ts
                yield _event("metrics", {"points": points}, repr(ts))
                idle = 0.0
            if status["status"] in TERMINAL and not batches:
                yield _event("end", {"status": status["status"]})
                return
            if more:
                continue
            await anyio.sleep(POLL_S)
            idle += POLL_S
            if idle >= KEEPALIVE_S:
                idle = 0.0
                yield ": keep-alive\n\n"

    return StreamingResponse(
        stream(), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
