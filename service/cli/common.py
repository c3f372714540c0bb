"""What the client commands share: the ``--url``/``--user`` options, the API client they
build, and how API and connection errors end a command (exit 2 and 3, one line)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.client import Client


def client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None,
                   help="API URL (default VAELAB_API_URL or http://127.0.0.1:8000).")
    p.add_argument("--user", default=None, help="Sent as X-Vaelab-User.")


def make_client(args: argparse.Namespace) -> Client:
    from service.client import Client
    from service.core.config import get_settings

    return Client(args.url or get_settings().api_url, args.user)


def run_client(fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    import httpx

    from service.client import ApiError

    try:
        return fn(args)
    except ApiError as exc:
        print(f"vaelab: {exc}", file=sys.stderr)
        return 2
    except httpx.TransportError as exc:
        print(f"vaelab: cannot reach the API: {exc} (is `vaelab serve` running?)",
              file=sys.stderr)
        return 3
