"""The first admin of a fresh installation, so the embedded default needs no setup.

When no user exists, ``vaelab serve`` (and ``vaelab api``) creates an admin named after the
login name (``admin`` if that name is not a valid user name) and writes its token to
``<data_dir>/admin.token`` with mode 0600. The CLI on the same machine reads that file when
no token is configured (:mod:`service.clientconfig`), so the README tour needs no flags.
"""

from __future__ import annotations

import getpass
import logging
import os
from pathlib import Path

from service.core.config import Settings
from service.db import users as users_db
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
