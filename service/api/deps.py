"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.orm import Session

from service.core.config import Settings
from service.db import jobs as jobs_db
from service.db import sweeps as sweeps_db
from service.db.models import Job, Sweep
from service.db.session import get_sessionmaker


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    session = get_sessionmaker(settings.db_url)()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def current_user(
    x_vaelab_user: Annotated[
        str | None,
        Header(description="Who is asking. No authentication: the lab trusts its network."),
    ] = None,
) -> str:
    user = (x_vaelab_user or "").strip() or "anonymous"
    if len(user) > 200:
        raise HTTPException(400, "X-Vaelab-User is longer than 200 characters")
    return user


CurrentUser = Annotated[str, Depends(current_user)]


def get_enqueue(request: Request) -> Callable[[Job], None]:
    return request.app.state.enqueue


EnqueueDep = Annotated[Callable[[Job], None], Depends(get_enqueue)]


def get_job(job_id: uuid.UUID, session: SessionDep) -> Job:
    job = jobs_db.get_job(session, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


JobDep = Annotated[Job, Depends(get_job)]


def get_sweep(sweep_id: uuid.UUID, session: SessionDep) -> Sweep:
    sweep = sweeps_db.get_sweep(session, sweep_id)
    if sweep is None:
        raise HTTPException(404, f"no sweep {sweep_id}")
    return sweep


SweepDep = Annotated[Sweep, Depends(get_sweep)]
