"""Server-Sent Events: a job's status changes and new metric points, live (FastAPI's native
SSE: ``EventSourceResponse``, which also sends the keep-alive comments).

Events: ``status`` (the job's status and progress; sent on connect and on every change),
``metrics`` (one per batch the worker flushed: ``{points, ts}``; its ``id`` is the batch's
``ts``) and ``end`` (the job finished and every point was sent). Reconnecting with ``Last-Event-ID``
resumes after that batch: nothing is skipped or sent twice. ``history=false`` starts after the
newest stored batch instead (a dashboard reads the history, downsampled, from ``/metrics``).

A stream outlives the check of its token at connect, so every
``VAELAB_STREAM_TOKEN_CHECK_S`` (2 s) it reads its token again (one indexed read, in the
poll's session); once the token is revoked or expired or its user disabled or deleted, it
sends ``error`` (``{status: 401, detail}``) and closes, as a new request would get 401. The
same read applies the read rule again: under ``VAELAB_READ_SCOPE=owner`` an admin made a
member loses another's stream with ``error`` (``{status: 404}``), as a new request would.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from service.api.deps import CurrentIdentity, JobDep, SettingsDep
from service.api.responses import STREAM_ERRORS
from service.api.schemas import progress_of
from service.core import access
from service.db import jobs as jobs_db
from service.db import users as users_db
from service.db.metrics import batches_after, last_ts
from service.db.models import TERMINAL
from service.db.session import get_engine, session_scope

router = APIRouter(prefix="/api/v1/jobs", tags=["events"],
                   responses={**STREAM_ERRORS})

POLL_S = 0.5
BATCHES_PER_POLL = 50
RETRY_MS = 2000


def _poll(url: str, job_id: uuid.UUID, cursor: float, recheck: tuple[uuid.UUID, str] | None
          ) -> tuple[dict[str, Any], list[tuple[float, list[dict]]], bool,
                     tuple[int, str] | None]:
    """The job's status, the batches after ``cursor``, whether more remain, and (when
    ``recheck`` = (token id, read scope) is given) why the stream may no longer go on, as
    (HTTP status, reason); None: it may."""
    with session_scope(url) as s:
        job = jobs_db.get_job(s, job_id)
        if recheck is not None:
            problem, user = users_db.token_holder(s, recheck[0])
            if problem is not None:
                return {}, [], False, (401, problem)
            if job is not None and not access.may_read(user, job.owner, recheck[1]):
                job = None  # as absent as it is to a new request
        if job is None:
            return {}, [], False, (404, f"no job {job_id}")
        status = {
            "status": job.status, "error": job.error, "attempts": job.attempts,
            "cancel_requested": job.cancel_requested,
            "progress": progress_of(job).model_dump(), "warnings": job.warnings or [],
        }
        batches, more = batches_after(s, job_id, cursor, BATCHES_PER_POLL)
    return status, batches, more, None


def _without_eta(status: dict[str, Any] | None) -> Any:
    if status is None:
        return None
    return {**status, "progress": {k: v for k, v in status["progress"].items()
                                   if k != "eta_seconds"}}


@router.get("/{job_id}/events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def job_events(
    job: JobDep,
    request: Request,
    settings: SettingsDep,
    identity: CurrentIdentity,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    history: Annotated[bool, Query(description="false: only batches flushed after connecting "
                                   "(ignored when resuming with Last-Event-ID).")] = True,
) -> AsyncIterator[ServerSentEvent]:
    try:
        cursor = float(last_event_id) if last_event_id else 0.0
    except ValueError:
        cursor = 0.0
    job_id, url = job.id, settings.db_url
    if not history and not last_event_id:
        cursor = await anyio.to_thread.run_sync(
            lambda: last_ts(get_engine(url), job_id) or 0.0)
    last_status = None
    recheck, check_every = (identity.token.id, settings.read_scope), settings.stream_token_check_s
    checked = time.monotonic()  # the dependency checked the token just now
    yield ServerSentEvent(retry=RETRY_MS)
    while not await request.is_disconnected():
        due = time.monotonic() - checked >= check_every
        if due:
            checked = time.monotonic()
        status, batches, more, problem = await anyio.to_thread.run_sync(
            _poll, url, job_id, cursor, recheck if due else None)
        if problem is not None:
            code, reason = problem
            yield ServerSentEvent(event="error", data={
                "status": code, "detail": f"{reason}; the stream is closed"})
            return
        # a new status event when something but the clock changed: the ETA counts down on
        # its own, and the client counts it down between events
        same = _without_eta(status) == _without_eta(last_status)
        if not same:
            last_status = status
            yield ServerSentEvent(event="status", data=status)
        for ts, points in batches:
            cursor = ts
            yield ServerSentEvent(event="metrics", data={"points": points, "ts": ts}, id=repr(ts))
        if status["status"] in TERMINAL and not batches:
            yield ServerSentEvent(event="end", data={"status": status["status"]})
            return
        if not more:
            await anyio.sleep(POLL_S)
