"""FastAPI dependencies as ``Annotated`` aliases: the session, the caller (from the bearer
token or the dashboard's cookie) and the rules of :mod:`service.core.access` as 403s."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.core import access
from service.core.config import Settings
from service.db import jobs as jobs_db
from service.db import sweeps as sweeps_db
from service.db import users as users_db
from service.db.ids import BadId
from service.db.models import Job, Sweep, User
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


TOKEN_COOKIE = "vaelab_token"
bearer = HTTPBearer(auto_error=False, description="An API token (`vaelab users create`, "
                    "`vaelab tokens create`); the dashboard sends it as a cookie instead.")


def unauthorized(why: str) -> HTTPException:
    return HTTPException(401, why, headers={"WWW-Authenticate": "Bearer"})


def current_identity(
    request: Request, session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> users_db.Identity:
    """The caller, from ``Authorization: Bearer <token>`` or the dashboard's cookie; 401
    without a valid token. The owner of what a request creates always comes from here."""
    secret = credentials.credentials if credentials else request.cookies.get(TOKEN_COOKIE)
    if not secret:
        raise unauthorized("an API token is required: send `Authorization: Bearer <token>` "
                           "(`vaelab login`, or VAELAB_TOKEN)")
    identity = users_db.authenticate(session, secret)
    if identity is None:
        raise unauthorized("the API token is unknown, revoked or expired")
    if "x-vaelab-user" in request.headers:
        raise HTTPException(400, "X-Vaelab-User is no longer read: who you are comes from "
                                 "your API token; drop the header")
    return identity


def current_user(identity: Annotated[users_db.Identity, Depends(current_identity)]) -> User:
    return identity.user


CurrentUser = Annotated[User, Depends(current_user)]
CurrentIdentity = Annotated[users_db.Identity, Depends(current_identity)]


def require_admin(user: CurrentUser) -> User:
    forbid_unless(lambda: access.require_admin(user, "do this"))
    return user


AdminUser = Annotated[User, Depends(require_admin)]


def forbid_unless(check: Callable[[], None]) -> None:
    """Run an :mod:`service.core.access` check; its refusal becomes a 403 saying why."""
    try:
        check()
    except access.Forbidden as exc:
        raise HTTPException(403, str(exc)) from None


def owner_or_admin(user: User, owner: str, action: str, what: str) -> None:
    """403 unless ``user`` owns the resource or is an admin (cancel, delete, priority...)."""
    forbid_unless(lambda: access.require_owner_or_admin(user, owner, action, what))


def readable(user: User, settings: Settings, owner: str) -> bool:
    return access.may_read(user, owner, settings.read_scope)


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


def get_job(job_id: IdPath, session: SessionDep, user: CurrentUser,
            settings: SettingsDep) -> Job:
    found = resolve("job", "job_id", job_id, lambda t: jobs_db.job_ids_matching(session, t))
    job = jobs_db.get_job(session, found)
    if job is None or not readable(user, settings, job.owner):
        raise HTTPException(404, f"no job {job_id}")
    return job


JobDep = Annotated[Job, Depends(get_job)]


def get_sweep(sweep_id: IdPath, session: SessionDep, user: CurrentUser,
              settings: SettingsDep) -> Sweep:
    found = resolve("sweep", "sweep_id", sweep_id,
                    lambda t: sweeps_db.sweep_ids_matching(session, t))
    sweep = sweeps_db.get_sweep(session, found)
    if sweep is None or not readable(user, settings, sweep.owner):
        raise HTTPException(404, f"no sweep {sweep_id}")
    return sweep


SweepDep = Annotated[Sweep, Depends(get_sweep)]
