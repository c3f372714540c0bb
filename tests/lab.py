"""Helpers of the lab-queue tests: who a request comes from, a user's quotas, and a database
of the test's own (the queue tests count every waiting job, so none may be left over from
other tests in the session's shared database).

``as_user`` and ``set_quota`` are the one place that says how a test acts as a user and sets
a user's policy: a token of that user (``Backend.auth_as``) and ``service.db.users``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Backend, make_backend


def as_user(backend: Backend, name: str) -> dict[str, str]:
    """Headers that make a request come from ``name`` (a member, created on first use)."""
    return backend.auth_as(name)


def set_quota(db_url: str, name: str, **policy: object) -> None:
    """Create ``name`` if needed and set their policy (max_running, max_queued, weight,
    max_priority, role)."""
    from service.db import users as users_db
    from service.db.session import session_scope

    with session_scope(db_url) as s:
        user = users_db.get_user(s, name) or users_db.create_user(s, name)
        users_db.update_user(s, user, **policy)


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_backend(request, tmp_path) -> Iterator[Backend]:  # noqa: ANN001
    """A migrated database (and broker queues) of this test's own, on each backend."""
    b = make_backend(request.param, tmp_path)
    yield b
    for fn in b.cleanup:
        fn()
