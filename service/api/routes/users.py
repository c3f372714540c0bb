"""Users and API tokens. Users and their limits are admin-only; anyone lists, creates and
revokes their own tokens (an admin, anyone's). A token's secret is answered once, when it is
created; only its sha256 is kept."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status

from service.api.deps import (
    CurrentIdentity,
    CurrentUser,
    IdPath,
    SessionDep,
    forbid_unless,
    resolve,
)
from service.api.responses import BY_ID, NOT_FOUND, taken
from service.api.schemas import (
    Me,
    NewToken,
    NewUser,
    TokenCreate,
    TokenOut,
    UserCreate,
    UserOut,
    UserUpdate,
)
from service.core import access
from service.db import users as users_db
from service.db.models import ApiToken, User, utcnow

users = APIRouter(prefix="/api/v1/users", tags=["users"])
tokens = APIRouter(prefix="/api/v1/tokens", tags=["users"])


def _new_token(session: SessionDep, user: str, expires_days: float | None) -> NewToken:
    expires = utcnow() + timedelta(days=expires_days) if expires_days else None
    row, secret = users_db.create_token(session, user, expires_at=expires)
    session.commit()
    return NewToken(**TokenOut.of(row).model_dump(), token=secret)


@users.post("", status_code=status.HTTP_201_CREATED, response_model=NewUser,
            responses=taken("The name is taken."))
def create_user(body: UserCreate, session: SessionDep, caller: CurrentUser) -> NewUser:
    """A user with their first token (shown once). Admins only."""
    forbid_unless(lambda: access.require_admin(caller, "create users"))
    try:
        user = users_db.create_user(session, body.name, role=body.role,
                                    **body.model_dump(include=set(users_db.LIMITS)))
    except users_db.UserExists as exc:
        raise HTTPException(409, str(exc)) from None
    token = _new_token(session, user.name, None)
    return NewUser(**UserOut.of(user).model_dump(), token=token)


@users.get("", response_model=list[UserOut])
def list_users(session: SessionDep, caller: CurrentUser) -> list[UserOut]:
    """Every user with their limits. Admins only."""
    forbid_unless(lambda: access.require_admin(caller, "list users"))
    return [UserOut.of(u) for u in users_db.list_users(session)]


@users.get("/me", response_model=Me)
def me(identity: CurrentIdentity) -> Me:
    """Who this token belongs to, with their limits."""
    return Me(**UserOut.of(identity.user).model_dump(), token_id=identity.token.id)


def get_named_user(name: str, session: SessionDep) -> User:
    user = users_db.get_user(session, name)
    if user is None:
        raise HTTPException(404, f"no user {name}")
    return user


@users.patch("/{name}", response_model=UserOut, responses=NOT_FOUND)
def update_user(name: str, body: UserUpdate, caller: CurrentUser,
                session: SessionDep) -> UserOut:
    """Set limits, the role or ``disabled`` (a disabled user's tokens stop working). Only the
    fields sent change; null clears a limit. Admins only."""
    forbid_unless(lambda: access.require_admin(caller, "change users and their limits"))
    user = get_named_user(name, session)  # after the check: members learn no names
    users_db.update_user(session, user, **body.model_dump(exclude_unset=True))
    session.commit()
    return UserOut.of(user)


@tokens.post("", status_code=status.HTTP_201_CREATED, response_model=NewToken,
             responses=NOT_FOUND)
def create_token(body: TokenCreate, session: SessionDep, caller: CurrentUser) -> NewToken:
    """A new token for yourself, or (admins) for ``user``. The secret is answered once."""
    name = body.user or caller.name
    forbid_unless(lambda: access.require_self_or_admin(caller, name, "create tokens for "
                                                        f"{name}"))
    if users_db.get_user(session, name) is None:
        raise HTTPException(404, f"no user {name}")
    return _new_token(session, name, body.expires_days)


@tokens.get("", response_model=list[TokenOut])
def list_tokens(session: SessionDep, caller: CurrentUser,
                user: Annotated[str | None, Query(description="An admin: only this user's "
                                                  "(default everyone's).")] = None,
                ) -> list[TokenOut]:
    """Your tokens; an admin sees everyone's. Never the secrets."""
    if not access.is_admin(caller):
        if user is not None and user != caller.name:
            forbid_unless(lambda: access.require_self_or_admin(caller, user, "list the "
                                                                "tokens of " + user))
        user = caller.name
    return [TokenOut.of(t) for t in users_db.list_tokens(session, user)]


def get_token(token_id: IdPath, session: SessionDep) -> ApiToken:
    found: uuid.UUID = resolve("token", "token_id", token_id,
                               lambda t: users_db.token_ids_matching(session, t))
    token = users_db.get_token(session, found)
    if token is None:
        raise HTTPException(404, f"no token {token_id}")
    return token


@tokens.delete("/{token_id}", response_model=TokenOut, responses=BY_ID)
def revoke_token(token: Annotated[ApiToken, Depends(get_token)], session: SessionDep,
                 caller: CurrentUser) -> TokenOut:
    """Revoke a token: the next request with it gets 401. Yours, or (admins) anyone's."""
    forbid_unless(lambda: access.require_self_or_admin(caller, token.user,
                                                       f"revoke {token.user}'s tokens"))
    users_db.revoke_token(session, token)
    session.commit()
    return TokenOut.of(token)
