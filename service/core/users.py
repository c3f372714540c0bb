"""The first admin of a fresh installation, so the embedded default needs no setup; and the
offline recovery of an admin's access (:func:`recover_admin`, ``vaelab admin-token``).

When no user exists, ``vaelab serve`` (and ``vaelab api``) creates an admin named after the
login name (``admin`` if that name is not a valid user name) and writes its token to
``<data_dir>/admin.token`` with mode 0600. The CLI on the same machine reads that file when
no token is configured (:mod:`service.clientconfig`), so the README tour needs no flags.
"""

from __future__ import annotations

import getpass
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from service.core.config import Settings
from service.db import users as users_db
from service.db.models import utcnow
from service.db.session import session_scope

log = logging.getLogger("vaelab.users")


def local_admin_name() -> str:
    try:
        name = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container): the plain default
        return "admin"
    return name if users_db.valid_name(name) else "admin"


def write_secret(path: Path, secret: str) -> None:
    """``secret`` into ``path``, readable by its owner only (0600, whatever the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (secret + "\n").encode())
    finally:
        os.close(fd)


def ensure_local_admin(settings: Settings) -> str | None:
    """Create the first admin and its token file if the database has no user yet; the new
    admin's name, or None when users already exist."""
    with session_scope(settings.db_url) as s:
        if users_db.count_users(s) > 0:
            return None
        name = local_admin_name()
        users_db.create_user(s, name, role="admin")
        _, secret = users_db.create_token(s, name)
        write_secret(settings.admin_token_file, secret)
    log.info("created admin %s; its token is in %s", name, settings.admin_token_file)
    return name


def read_secret(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


# --------------------------------------------------------------------- offline recovery


class RecoveryRefused(ValueError):
    """``vaelab admin-token`` cannot act as asked; the message says why."""


@dataclass(frozen=True)
class Recovered:
    name: str
    created: bool  # the admin did not exist and was created
    enabled: bool  # the admin was disabled and is enabled again
    token_id: uuid.UUID
    secret: str
    expires_at: datetime | None


def recover_admin(settings: Settings, name: str | None = None,
                  expires_days: float | None = None) -> Recovered:
    """A fresh token for an admin, written straight into ``settings``' database (no API, no
    token: whoever can reach the server's database is already in charge of it). The way
    back in when every admin token is lost or revoked.

    ``name``: that admin (created as an admin if there is no such user; enabled again if
    disabled; a member is refused, not promoted, so a mistyped name cannot hand out admin
    rights). None: the only admin, refused when there are none or several."""
    with session_scope(settings.db_url) as s:
        if name is None:
            admins = [u.name for u in users_db.list_users(s) if u.role == "admin"]
            if not admins:
                raise RecoveryRefused("there is no admin user: give --user NAME to create "
                                      "one")
            if len(admins) > 1:
                raise RecoveryRefused(f"there are {len(admins)} admins "
                                      f"({', '.join(admins[:5])}): give --user NAME")
            name = admins[0]
        if not users_db.valid_name(name):
            raise RecoveryRefused(f"--user {name!r}: a user name is letters, digits and "
                                  ". _ @ - (up to 100), starting with a letter or digit")
        user = users_db.get_user(s, name)
        created = user is None
        if user is None:
            user = users_db.create_user(s, name, role="admin")
        elif user.role != "admin":
            raise RecoveryRefused(f"--user {name}: {name} is a member, not an admin; name an "
                                  "admin, or a new name to create an admin (who can then "
                                  f"run `vaelab users set {name} --role admin`)")
        enabled = bool(user.disabled)
        if enabled:
            users_db.update_user(s, user, disabled=False)
        expires = utcnow() + timedelta(days=expires_days) if expires_days else None
        row, secret = users_db.create_token(s, name, expires_at=expires)
        recovered = Recovered(name, created, enabled, row.id, secret, expires)
    log.info("admin-token: a new token %s for admin %s, written to the database directly",
                recovered.token_id, name)
    return recovered
