"""Who may do what: the lab's authorization rules, written once.

* Everyone reads every job, sweep, metric, artifact and dataset (``VAELAB_READ_SCOPE=lab``,
  the default); with ``owner`` a member sees only their own (another's answers 404, as if
  it did not exist, so ids are not disclosed); an admin sees everything.
* Only the owner or an admin cancels, deletes, changes the priority of or preempts a job or
  sweep, and deletes a dataset.
* Users, quotas and other users' tokens are admin-only; a member lists and revokes their own
  tokens and creates tokens for themself.

Each refusal is a :class:`Forbidden` whose message says why; the API turns it into a 403.
"""

from __future__ import annotations

from typing import Protocol


class Forbidden(Exception):
    """Refused: the message says why (the API answers 403 with it)."""


class Caller(Protocol):
    name: str
    role: str


def is_admin(user: Caller) -> bool:
    return user.role == "admin"


def may_read(user: Caller, owner: str, read_scope: str) -> bool:
    """Whether ``user`` may see a resource of ``owner`` under ``read_scope`` (lab|owner)."""
    return read_scope == "lab" or is_admin(user) or user.name == owner


def list_owner(user: Caller, asked: str | None, read_scope: str) -> str | None:
    """The owner filter a list request runs with: under ``owner`` scope a member's lists
    hold only their own resources, whatever they asked for."""
    if read_scope == "lab" or is_admin(user):
        return asked
    return user.name


def require_owner_or_admin(user: Caller, owner: str, action: str, what: str) -> None:
    """``action`` (cancel, delete, ...) on ``owner``'s ``what`` (job, sweep, dataset)."""
    if is_admin(user) or user.name == owner:
        return
    raise Forbidden(f"{owner}'s {what}; only its owner or an admin may {action} it")


def require_admin(user: Caller, action: str) -> None:
    """``action`` is for admins only ("create users", "preempt jobs", ...)."""
    if not is_admin(user):
        raise Forbidden(f"only an admin may {action}; {user.name} is a member")


def require_self_or_admin(user: Caller, name: str, action: str) -> None:
    """``action`` concerns user ``name``'s account (their tokens)."""
    if is_admin(user) or user.name == name:
        return
    raise Forbidden(f"only {name} or an admin may {action}")
