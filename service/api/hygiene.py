"""Input hygiene for every route, in one place (a plain ASGI middleware), before any handler
or database sees the request.

422, naming the field, for: a JSON body that is no JSON (or no UTF-8: FastAPI said 400); a
NUL byte in the path, in a query parameter or in any string or key of a JSON body
(PostgreSQL's text and json types refuse NUL, so it used to surface as a 500); a
non-finite JSON number (``Infinity``, ``NaN``, ``1e400``: Python's json reads them,
PostgreSQL's json does not and they are no valid JSON); an integer in a JSON body outside
the signed 64-bit range. Integer query parameters are bounded by their types
(service/api/params.py).

A JSON body is read whole here (bounded by ``VAELAB_MAX_REQUEST_BYTES``: service/api/limits.py
sits outside this middleware) and handed on unchanged.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import capped

INT64 = 2**63


class _NonFinite:
    """Stands in for ``Infinity``, ``-Infinity`` or ``NaN`` so that the walk names where."""

    def __init__(self, name: str):
        self.name = name


def query_problems(scope: Scope) -> list[dict[str, str]]:
    problems = []
    if "\x00" in scope.get("path", ""):
        problems.append({"field": "path", "message": "the path holds a NUL byte"})
    query = scope.get("query_string", b"").decode("utf-8", "replace")
    for key, value in parse_qsl(query, keep_blank_values=True):
        if "\x00" in key or "\x00" in value:
            problems.append({"field": "query." + key.replace("\x00", "\\0"),
                             "message": "a NUL byte is not allowed"})
    return problems


def body_problems(body: bytes) -> list[dict[str, str]]:
    """Problems of a JSON body (FastAPI would answer a body that is no UTF-8 with a 400)."""
    if not body.strip():
        return []  # no body: the route says whether it needs one
    try:
        doc = json.loads(body, parse_constant=_NonFinite)
        problems: list[dict[str, str]] = []
        _walk(doc, [], problems)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
        where = f" at byte {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        return [{"field": "body", "message": f"not valid JSON{where}"}]
    except RecursionError:
        return [{"field": "body", "message": "JSON nested too deeply"}]
    return problems


def _walk(value: Any, path: list[str], problems: list[dict[str, str]]) -> None:
    field = ".".join(path) or "body"
    if isinstance(value, str):
        if "\x00" in value:
            problems.append({"field": field, "message": "a NUL byte is not allowed"})
    elif isinstance(value, _NonFinite):
        problems.append({"field": field, "message": f"{value.name} is not a JSON number; "
                                                    "numbers must be finite"})
    elif isinstance(value, float):
        if not math.isfinite(value):  # 1e400 reads as inf without any constant
            problems.append({"field": field, "message": "a number too large to be finite"})
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int):
        if not -INT64 <= value < INT64:
            problems.append({"field": field,
                             "message": "an integer outside the signed 64-bit range"})
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                problems.append({"field": field, "message": "a NUL byte in a key"})
                continue
            _walk(item, [*path, key], problems)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, [*path, str(i)], problems)


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = value.split(b";")[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


async def _answer(send: Send, status: int, detail: Any) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class InputHygieneMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problems = query_problems(scope)
        if problems:
            await _answer(send, 422, capped(problems))
            return
        if not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:  # bounded: BodyLimitMiddleware (outside) raises past the limit
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problems = body_problems(body)
        if problems:
            await _answer(send, 422, capped(problems))
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
