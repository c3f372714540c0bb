"""The ``users`` and ``api_tokens`` tables: who may call the API, their scheduling limits,
and their bearer tokens.

A token is ``vl_`` + :func:`secrets.token_urlsafe` (32 random bytes). Only its sha256 is
stored; the secret is returned once, by :func:`create_token`, and never again. A request's
token is found by its hash (a unique index), so checking one is one indexed read.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from service.db.models import USER_ROLES, ApiToken, User, utcnow

TOKEN_PREFIX = "vl_"
# last_used_at is written at most this often per token: a busy client costs one UPDATE a
# minute, not one per request
TOUCH_EVERY = timedelta(seconds=60)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
LIMITS = ("max_running", "max_queued", "weight", "max_priority")


class UserExists(ValueError):
    pass


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def valid_name(name: str) -> bool:
    return bool(NAME_RE.match(name))


# ------------------------------------------------------------------------------ users


def get_user(session: Session, name: str) -> User | None:
    """The user called ``name`` (with its limits: NULL = no limit), or None."""
    return session.get(User, name)


def create_user(session: Session, name: str, *, role: str = "member",
                **limits: float | int | None) -> User:
    if role not in USER_ROLES:
        raise ValueError(f"role must be one of {', '.join(USER_ROLES)}")
    if get_user(session, name) is not None:
        raise UserExists(f"user {name} exists")
    user = User(name=name, role=role, weight=1.0, disabled=False)
    for key, value in limits.items():
        if key not in LIMITS:
            raise ValueError(f"unknown limit {key}")
        setattr(user, key, value)
    if user.weight is None:
        user.weight = 1.0
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def update_user(session: Session, user: User, **fields: object) -> User:
    """Set any of the limits, ``role`` or ``disabled`` (None clears a limit, and leaves
    ``role`` and ``disabled`` as they are)."""
    for key, value in fields.items():
        if key not in (*LIMITS, "role", "disabled"):
            raise ValueError(f"unknown field {key}")
        if key in ("role", "disabled") and value is None:
            continue
        if key == "weight" and value is None:
            value = 1.0
        setattr(user, key, value)
    session.flush()
    return user


# ----------------------------------------------------------------------------- tokens


def create_token(session: Session, user: str, *, expires_at: datetime | None = None
                 ) -> tuple[ApiToken, str]:
    """A new token for ``user``: (its row, the secret). The secret is not kept."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(id=uuid.uuid4(), user=user, hash=hash_secret(secret),
                   expires_at=expires_at)
    session.add(row)
    session.flush()
    return row, secret


@dataclass(frozen=True)
class Identity:
    """Who a valid token belongs to."""

    user: User
    token: ApiToken


def authenticate(session: Session, secret: str, now: datetime | None = None
                 ) -> Identity | None:
    """The user and token of ``secret`` if it is valid now (known, not revoked, not expired,
    its user not disabled), else None. Records ``last_used_at`` (at most once a minute)."""
    now = now or utcnow()
    row = session.execute(
        select(ApiToken, User).join(User, User.name == ApiToken.user)
        .where(ApiToken.hash == hash_secret(secret))
    ).first()
    if row is None:
        return None
    token, user = row
    if _why_invalid(token, user, now) is not None:
        return None
    if token.last_used_at is None or _aware(token.last_used_at) <= now - TOUCH_EVERY:
        _touch(session, token.id, now)
    return Identity(user, token)


def _why_invalid(token: ApiToken, user: User, now: datetime) -> str | None:
    """Why a known token is refused now ("the API token was revoked", ...), or None."""
    if token.revoked_at is not None:
        return "the API token was revoked"
    if user.disabled:
        return f"user {user.name} is disabled"
    if token.expires_at is not None and _aware(token.expires_at) <= now:
        return "the API token expired"
    return None


def token_holder(session: Session, token_id: uuid.UUID, now: datetime | None = None
                 ) -> tuple[str | None, User | None]:
    """Why the token ``token_id`` (valid when a request began) is refused now ("the API
    token was revoked", "... expired", "user bob is disabled", "... no longer exists"), and
    its user as it is now; (None, user) while it is valid, (reason, None) once it is not. A
    long-lived request (an event stream) re-checks its token and its user's role with this,
    one indexed read. Records nothing (``last_used_at`` belongs to requests)."""
    row = session.execute(
        select(ApiToken, User).join(User, User.name == ApiToken.user)
        .where(ApiToken.id == token_id)
    ).first()
    if row is None:
        return "the API token no longer exists", None
    problem = _why_invalid(row[0], row[1], now or utcnow())
    return problem, (row[1] if problem is None else None)


def _touch(session: Session, token_id: uuid.UUID, now: datetime) -> None:
    # conditional, so concurrent requests of one token write it once a minute between them
    session.execute(
        update(ApiToken).where(ApiToken.id == token_id,
                               or_(ApiToken.last_used_at.is_(None),
                                   ApiToken.last_used_at <= now - TOUCH_EVERY))
        .values(last_used_at=now)
        .execution_options(synchronize_session="fetch"))  # naive SQLite times: no evaluate
    session.commit()


def _aware(t: datetime) -> datetime:
    from datetime import UTC

    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def list_tokens(session: Session, user: str | None = None) -> list[ApiToken]:
    q = select(ApiToken).order_by(ApiToken.user, ApiToken.created_at)
    if user is not None:
        q = q.where(ApiToken.user == user)
    return list(session.scalars(q))


def token_ids_matching(session: Session, text: str) -> list[uuid.UUID]:
    """Token ids that ``text`` (an id or a unique prefix of 6+ hex digits) names."""
    from service.db.ids import matching

    return matching(session, ApiToken.id, text)


def get_token(session: Session, token_id: uuid.UUID) -> ApiToken | None:
    return session.get(ApiToken, token_id)


def revoke_token(session: Session, token: ApiToken) -> ApiToken:
    """Revoked from now on (the next request with it is refused); revoking twice keeps the
    first time."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
    return token
