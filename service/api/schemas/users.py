"""Users and API tokens (``/api/v1/users``, ``/api/v1/tokens``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from service.api.params import INT32_MAX
from service.api.schemas.jobs import aware
from service.db.models import ApiToken, User

UserName = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$",
                 description="Letters, digits and . _ @ - (up to 100).")


class Limits(BaseModel):
    """The scheduler's per-user limits; null = no limit."""

    max_running: int | None = Field(default=None, ge=0, le=INT32_MAX,
                                    description="Jobs running at once.")
    max_queued: int | None = Field(default=None, ge=0, le=INT32_MAX,
                                   description="Jobs waiting at once.")
    weight: float = Field(default=1.0, gt=0, le=1e6, description="Fair-share weight.")
    max_priority: int | None = Field(default=None, ge=0, le=9,
                                     description="The highest priority allowed (0..9).")


class UserCreate(Limits):
    name: str = UserName
    role: Literal["admin", "member"] = "member"


class UserUpdate(BaseModel):
    """Only the fields sent change; null clears a limit (weight: back to 1.0) and leaves
    ``role`` and ``disabled`` unchanged."""

    max_running: int | None = Field(default=None, ge=0, le=INT32_MAX)
    max_queued: int | None = Field(default=None, ge=0, le=INT32_MAX)
    weight: float | None = Field(default=None, gt=0, le=1e6)
    max_priority: int | None = Field(default=None, ge=0, le=9)
    role: Literal["admin", "member"] | None = None
    disabled: bool | None = None


class UserOut(Limits):
    name: str
    role: str
    created_at: datetime
    disabled: bool

    @classmethod
    def of(cls, u: User) -> UserOut:
        return cls(name=u.name, role=u.role, max_running=u.max_running,
                   max_queued=u.max_queued, weight=u.weight, max_priority=u.max_priority,
                   created_at=aware(u.created_at), disabled=u.disabled)


class TokenCreate(BaseModel):
    user: str | None = Field(default=None, description="Default: yourself (another user: "
                                                       "admins only).")
    expires_days: float | None = Field(default=None, gt=0, le=36_500,
                                       description="Default: never.")


class TokenOut(BaseModel):
    id: uuid.UUID
    user: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, t: ApiToken) -> TokenOut:
        return cls(id=t.id, user=t.user, created_at=aware(t.created_at),
                   expires_at=aware(t.expires_at), revoked_at=aware(t.revoked_at),
                   last_used_at=aware(t.last_used_at))


class NewToken(TokenOut):
    token: str = Field(description="The secret: shown this once, stored only as a hash.")


class NewUser(UserOut):
    token: NewToken


class Me(UserOut):
    token_id: uuid.UUID = Field(description="The token this request came with.")
