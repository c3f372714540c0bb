"""One error path for command-line programs: a problem the user can fix is one line on
stderr naming the file or option and the cause, with a non-zero exit code; never a
traceback.

``vaelab train`` uses it directly; the service's client commands (``service.cli``) reuse it
and register their own exception types (HTTP and connection errors) with :func:`run_guarded`.
Only the standard library, pyyaml and the engine's own errors are imported here.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vae_engine.errors import SpecError, VaelabError

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130

# an extra handler: exception type -> (exit code, message for that exception)
Handlers = Mapping[type[BaseException], tuple[int, Callable[[Any], str]]]


class FileProblem(SpecError):
    """A file the user named cannot be used: missing, unreadable, binary, not YAML/JSON.
    A SpecError on the ``<file>`` field, so spec loaders can keep catching SpecError."""

    def __init__(self, message: str):
        self.errors = [{"field": "<file>", "message": message}]
        Exception.__init__(self, message)


def read_document(path: str | Path) -> Any:
    """The parsed content of a YAML or JSON file (YAML is a superset of JSON).

    Raises :class:`FileProblem` with one line naming the file and the cause."""
    import yaml

    p = Path(path)
    try:
        raw = p.read_bytes()
    except IsADirectoryError:
        raise FileProblem(f"cannot read {p}: it is a directory") from None
    except OSError as exc:
        raise FileProblem(f"cannot read {p}: {exc.strerror or exc}") from None
    if b"\x00" in raw[:8192]:
        raise FileProblem(f"cannot read {p}: a binary file, not YAML or JSON") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"cannot read {p}: not UTF-8 text (byte {exc.start})") from None
    try:
        if p.suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise FileProblem(f"{p} is not valid JSON: {exc.msg} at line {exc.lineno} "
                          f"column {exc.colno}") from None
    except yaml.YAMLError as exc:
        raise FileProblem(f"{p} is not valid YAML: {_yaml_cause(exc)}") from None


def _yaml_cause(exc: Exception) -> str:
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1} column {mark.column + 1}"
    return " ".join(str(exc).split())


def one_line(text: object) -> str:
    """``text`` folded onto one line (multi-line causes joined with '; ')."""
    parts = [" ".join(line.split()) for line in str(text).splitlines()]
    return "; ".join(p for p in parts if p)


def run_guarded(prog: str, fn: Callable[[], int | None],
                handlers: Handlers | None = None) -> int:
    """Run ``fn`` and turn every exception into one line on stderr and an exit code:
    ``handlers`` first (most specific type first), then a user error (2), an OS error (2),
    Ctrl-C (130), anything else (1, "internal error"). ``VAELAB_DEBUG=1`` re-raises an
    internal error so its traceback shows."""
    try:
        return int(fn() or 0)
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BaseException as exc:  # noqa: BLE001 - the one place a command's errors end
        if isinstance(exc, SystemExit):
            raise
        code, msg = _describe(exc, handlers or {})
        if code == EXIT_INTERNAL and os.environ.get("VAELAB_DEBUG") == "1":
            raise
        print(f"{prog}: error: {one_line(msg)}", file=sys.stderr)
        return code


def _describe(exc: BaseException, handlers: Handlers) -> tuple[int, str]:
    for kind, (code, fmt) in handlers.items():
        if isinstance(exc, kind):
            return code, fmt(exc)
    if isinstance(exc, VaelabError):
        return EXIT_USER_ERROR, str(exc)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return EXIT_USER_ERROR, f"{where}{exc.strerror or exc}"
    return EXIT_INTERNAL, (f"internal error ({type(exc).__name__}: {exc}); "
                           "set VAELAB_DEBUG=1 for the traceback")
