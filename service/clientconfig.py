"""Where the ``vaelab`` client commands find the API and their token.

URL: ``--url``, else ``VAELAB_API_URL``, else the one ``vaelab login`` stored, else
http://127.0.0.1:8000. Token: ``VAELAB_TOKEN``, else the one ``vaelab login`` stored (for
that URL), else, for an API on this machine, the embedded server's
``<data_dir>/admin.token`` (``VAELAB_DATA_DIR``, default ``./vaelab-data``).

``vaelab login`` writes ``$XDG_CONFIG_HOME/vaelab/config.toml`` (default
``~/.config/vaelab/config.toml``) with mode 0600.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8000"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vaelab" / "config.toml"


def load() -> dict[str, str]:
    """The stored ``url`` and ``token`` ({} without a file); a broken file is ignored."""
    try:
        with config_path().open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return {k: v for k, v in data.items() if k in ("url", "token") and isinstance(v, str)}


def save(url: str, token: str) -> Path:
    """Store ``url`` and ``token`` (mode 0600, its folder 0700)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # a JSON string is a valid TOML basic string for these (ASCII) values
    text = f"url = {json.dumps(url)}\ntoken = {json.dumps(token)}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    return path


def _same(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def is_local(url: str) -> bool:
    try:
        return (urlsplit(url).hostname or "") in LOOPBACK
    except ValueError:
        return False


def resolve(url: str | None = None) -> tuple[str, str | None]:
    """(API URL, token or None) for a client command, in the order the module describes."""
    stored = load()
    url = url or os.environ.get("VAELAB_API_URL") or stored.get("url") or DEFAULT_URL
    token = os.environ.get("VAELAB_TOKEN") or None
    if token is None and stored.get("token") and _same(stored.get("url", url), url):
        token = stored["token"]
    if token is None and is_local(url):
        token = _embedded_admin_token()
    return url, token


def _embedded_admin_token() -> str | None:
    from service.core.config import Settings
    from service.core.users import read_secret

    try:
        return read_secret(Settings().admin_token_file)
    except Exception:  # noqa: BLE001 - unreadable settings: no token, the API says 401
        return None
