"""`vaelab login`, `vaelab users` and `vaelab tokens` as a person types them, against a real
`vaelab api` process (both backends): the login file is 0600 and every later command uses
it; VAELAB_TOKEN overrides it; a member is refused admin commands with the reason; a revoked
token is refused at once."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, Procs


def _run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_login_users_and_tokens_through_the_cli(backend, procs: Procs, tmp_path) -> None:  # noqa: ANN001
    url = procs.api(backend)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAELAB_")}
    env |= {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PYTHONPATH": str(ROOT)}

    def vaelab(*args: str, token: str | None = None) -> subprocess.CompletedProcess:
        return _run(tmp_path, env | ({"VAELAB_TOKEN": token} if token else {}), *args)

    out = vaelab("users", "list", "--url", url)
    assert out.returncode == 2 and "HTTP 401" in out.stderr and "vaelab login" in out.stderr

    out = vaelab("login", "--url", url, "--token", backend.token)
    assert out.returncode == 0, out.stderr
    config = tmp_path / "cfg" / "vaelab" / "config.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert url in config.read_text()

    name = f"carol{os.getpid()}"
    out = vaelab("users", "create", name)  # no --url: the stored one
    assert out.returncode == 0, out.stderr
    first = re.search(r"vl_\S+", out.stdout).group(0)
    first_id = re.search(r"token (\S+) for", out.stdout).group(1)
    out = vaelab("users", "set", name, "--max-running", "2", "--weight", "2.5")
    assert out.returncode == 0 and "running 2" in out.stdout and "weight 2.5" in out.stdout
    out = vaelab("users", "list")
    assert name in out.stdout and "admin" in out.stdout

    refused = vaelab("users", "list", token=first)  # VAELAB_TOKEN overrides the login
    assert refused.returncode == 2 and "HTTP 403" in refused.stderr
    assert "only an admin" in refused.stderr
    own = vaelab("tokens", "create", "--expires-days", "1", token=first)
    assert own.returncode == 0 and "expires" in own.stdout
    listed = vaelab("tokens", "list", token=first)
    assert listed.stdout.count(name[:16]) == 2  # only carol's two tokens

    out = vaelab("tokens", "revoke", first_id[:8])
    assert out.returncode == 0 and "revoked" in out.stdout
    gone = vaelab("jobs", token=first)
    assert gone.returncode == 2 and "HTTP 401" in gone.stderr


def test_vaelab_api_on_an_empty_database_creates_the_first_admin(procs: Procs, tmp_path) -> None:  # noqa: ANN001
    import httpx

    from service.db import migrate
    from tests.conftest import free_port, wait_http

    db = f"sqlite:///{tmp_path / 'vaelab.db'}"
    migrate.upgrade(db)
    port = free_port()
    proc = procs.start(["api", "--port", str(port)], {
        "VAELAB_DATA_DIR": str(tmp_path / "data"), "VAELAB_DATABASE_URL": db,
        "VAELAB_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        "VAELAB_ARTIFACT_ROOT": str(tmp_path / "artifacts"), "VAELAB_TOKEN": ""}, "api")
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", proc)
    token_file = tmp_path / "data" / "admin.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    me = httpx.get(f"{url}/api/v1/users/me", timeout=10,
                   headers={"Authorization": f"Bearer {token_file.read_text().strip()}"})
    assert me.status_code == 200 and me.json()["role"] == "admin"
    assert "created the admin user" in Path(proc.log_path).read_text()  # type: ignore[attr-defined]
