"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Path, Request
from sqlalchemy.orm import Session

from service.core.config import Settings
from service.db import jobs as jobs_db
from service.db import sweeps as sweeps_db
from service.db.ids import BadId
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


def require_admin(user: CurrentUser) -> str:
    """The hook for admin-only actions (preempt, preemptible): today every caller passes;
    once users and tokens land, this refuses a member with a 403."""
    return user


AdminUser = Annotated[str, Depends(require_admin)]


def get_enqueue(request: Request) -> Callable[[Job], None]:
    return request.app.state.enqueue


EnqueueDep = Annotated[Callable[[Job], None], Depends(get_enqueue)]


IdPath = Annotated[str, Path(description="The id, or a unique prefix of at least 6 hex "
                                          "digits (as git abbreviates commits).")]


def resolve(what: str, field: str, text: str,
            find: Callable[[str], list[uuid.UUID]]) -> uuid.UUID:
    """The one id ``text`` names: 422 if it is no id, 404 if nothing matches, 409 if the
    prefix is ambiguous."""
    try:
        ids = find(text)
    except BadId as exc:
        raise HTTPException(422, [{"field": field, "message": str(exc)}]) from None
    if not ids:
        raise HTTPException(404, f"no {what} {text}")
    if len(ids) > 1:
        shown = ", ".join(str(i) for i in ids[:2])
        raise HTTPException(409, f"ambiguous {what} id prefix {text!r}: it matches {shown}"
                                 f"{' and more' if len(ids) > 2 else ''}; type more of it")
    return ids[0]


def get_job(job_id: IdPath, session: SessionDep) -> Job:
    found = resolve("job", "job_id", job_id, lambda t: jobs_db.job_ids_matching(session, t))
    job = jobs_db.get_job(session, found)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


JobDep = Annotated[Job, Depends(get_job)]


def get_sweep(sweep_id: IdPath, session: SessionDep) -> Sweep:
    found = resolve("sweep", "sweep_id", sweep_id,
                    lambda t: sweeps_db.sweep_ids_matching(session, t))
    sweep = sweeps_db.get_sweep(session, found)
    if sweep is None:
        raise HTTPException(404, f"no sweep {sweep_id}")
    return sweep


SweepDep = Annotated[Sweep, Depends(get_sweep)]
