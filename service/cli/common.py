"""What the client commands share: the ``--url`` option, the API client they
build, reading a spec or sweep file, resolving an id prefix, and the one error path of
every ``vaelab`` command (:func:`guard`): one line on stderr, exit 2 for a bad file, option
or request, 3 when the API cannot be reached, never a traceback."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.client import Client

EXIT_UNREACHABLE = 3


def client_args(p: argparse.ArgumentParser, nested: bool = False) -> None:
    """``--url``; ``nested``: on a sub-command of a command that has it too, where an
    absent option must not overwrite the parent's value. Who you are comes from your token
    (VAELAB_TOKEN, ``vaelab login``, or the local server's admin token)."""
    default = argparse.SUPPRESS if nested else None
    p.add_argument("--url", default=default,
                   help="API URL (default VAELAB_API_URL, else `vaelab login`'s, else "
                        "http://127.0.0.1:8000).")


def make_client(args: argparse.Namespace) -> Client:
    from service.client import Client

    return Client(getattr(args, "url", None))


def guard(fn: Callable[[], int | None]) -> int:
    """Run a command with the shared error path (vae_engine.clierrors) plus the client's
    errors: an API refusal (exit 2) and an unreachable API (exit 3)."""
    import httpx

    from service.client import ApiError
    from vae_engine.clierrors import EXIT_USER_ERROR, run_guarded

    handlers: dict[type[BaseException], tuple[int, Callable[[Any], str]]] = {
        ApiError: (EXIT_USER_ERROR, str),
        httpx.InvalidURL: (EXIT_USER_ERROR, lambda e: f"--url: {e}"),
        httpx.UnsupportedProtocol: (EXIT_USER_ERROR, lambda e: f"--url: {e}"),
        httpx.TransportError: (EXIT_UNREACHABLE, _unreachable),
        httpx.HTTPError: (EXIT_UNREACHABLE, _unreachable),
    }
    return run_guarded("vaelab", fn, handlers)


def _unreachable(exc: Exception) -> str:
    url = ""
    try:
        url = f" at {exc.request.url.copy_with(path='/', query=None)}"  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        pass
    cause = str(exc) or type(exc).__name__
    return f"cannot reach the API{url}: {cause} (is `vaelab serve` running?)"


def read_file(path: str) -> Any:
    """A YAML/JSON file's content; a bad file raises a one-line FileProblem."""
    from vae_engine.clierrors import read_document

    return read_document(path)
