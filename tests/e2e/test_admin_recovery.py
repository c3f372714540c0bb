"""Offline recovery of an admin's access (`vaelab admin-token`), run as a person runs it on the
server machine, against a real database (both backends) and with no API running: the admin
revokes their every token through the API (locked out: 401), the API is stopped, the command
prints a fresh admin token straight from the database, and the restarted API accepts it.
Its refusals are one line naming the option or setting, never a traceback."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from service.db import users as users_db
from service.db.session import session_scope
from tests.conftest import ADMIN, ROOT, Procs, free_port
from tests.lab import fresh_backend  # noqa: F401

TOKEN = re.compile(r"^  (vl_\S+)$", re.M)


def _vaelab(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _refused(out: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 2, one error line (argparse puts its usage lines above it), no traceback."""
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert [i for i, line in enumerate(lines) if "error:" in line] == [len(lines) - 1], lines
    for w in words:
        assert w in lines[-1], (w, out.stderr)


def test_admin_token_recovers_a_locked_out_admin_without_the_api(
        fresh_backend, procs: Procs, tmp_path) -> None:  # noqa: ANN001, F811
    b = fresh_backend
    # the server's settings, no token, and an API URL where nothing listens
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAELAB_")}
    env |= {k: v for k, v in b.env().items() if k != "VAELAB_TOKEN"}
    env |= {"PYTHONPATH": str(ROOT), "VAELAB_API_URL": f"http://127.0.0.1:{free_port()}",
            "XDG_CONFIG_HOME": str(tmp_path / "cfg")}

    url = procs.api(b)
    admin = httpx.Client(base_url=url, headers=b.auth, timeout=30)
    ids = [t["id"] for t in admin.get("/api/v1/tokens", params={"user": ADMIN}).json()]
    assert ids
    for tid in ids:  # the admin revokes every token of theirs, the one in use last
        assert admin.delete(f"/api/v1/tokens/{tid}").status_code == 200
    assert admin.get("/api/v1/users/me").status_code == 401  # locked out
    Procs.kill(procs.procs[-1])  # and the API is down: the command needs none

    out = _vaelab(tmp_path, env, "admin-token", "--expires-days", "2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"admin {ADMIN}; database ")
    secret = TOKEN.search(out.stdout).group(1)
    assert "expires" in out.stdout and "shown this once" in out.stdout
    with session_scope(b.db_url) as s:  # kept hashed, like every token
        rows = users_db.list_tokens(s, ADMIN)
        assert all(secret not in r.hash for r in rows)
        assert sum(r.revoked_at is None for r in rows) == 1

    url = procs.api(b)
    me = httpx.get(f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json()["name"] == ADMIN and me.json()["role"] == "admin"
    listed = _vaelab(tmp_path, env | {"VAELAB_API_URL": url, "VAELAB_TOKEN": secret},
                     "users", "list")
    assert listed.returncode == 0 and ADMIN in listed.stdout, listed.stderr

    # a disabled admin is enabled again; a new name becomes a new admin
    with session_scope(b.db_url) as s:
        users_db.update_user(s, users_db.get_user(s, ADMIN), disabled=True)
    out = _vaelab(tmp_path, env, "admin-token", "--user", ADMIN, "--save")
    assert out.returncode == 0 and "(enabled again)" in out.stdout, out.stderr
    saved = b.data_dir / "admin.token"
    assert saved.read_text().strip() == TOKEN.search(out.stdout).group(1)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    out = _vaelab(tmp_path, env, "admin-token", "--user", "rescue")
    assert out.returncode == 0 and out.stdout.startswith("created admin rescue"), out.stderr
    fresh = TOKEN.search(out.stdout).group(1)
    me = httpx.get(f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {fresh}"})
    assert me.json() | {"token_id": None} == me.json() | {"name": "rescue", "role": "admin",
                                                           "token_id": None}

    # refusals: one line naming the option or setting
    b.auth_as("bob")
    _refused(_vaelab(tmp_path, env, "admin-token", "--user", "bob"),
             "--user bob", "bob is a member")
    with session_scope(b.db_url) as s:
        assert users_db.get_user(s, "bob").role == "member"  # not promoted
    _refused(_vaelab(tmp_path, env, "admin-token"), "2 admins", "--user NAME")
    _refused(_vaelab(tmp_path, env, "admin-token", "--user", "no spaces"), "--user")
    _refused(_vaelab(tmp_path, env, "admin-token", "--expires-days", "-1"), "--expires-days")
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    _refused(_vaelab(tmp_path, env | {"VAELAB_DATABASE_URL": dead}, "admin-token"),
             "VAELAB_DATABASE_URL", "cannot open the database")
    bare = {k: v for k, v in env.items() if k != "VAELAB_DATABASE_URL"}
    _refused(_vaelab(tmp_path, bare, "admin-token", "--data-dir", str(tmp_path / "none")),
             "--data-dir", "no database at")
    assert not (tmp_path / "none" / "vaelab.db").exists()
