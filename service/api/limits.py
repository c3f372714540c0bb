"""The request body limit (``VAELAB_MAX_REQUEST_BYTES``), a plain ASGI middleware.

A body declared larger than the limit (``Content-Length``) is refused before a byte of it is
read; a body without a length (chunked) is counted as it streams and refused as soon as it
passes the limit, so the process holds at most the limit plus one chunk (uvicorn stops
reading the socket while nobody consumes). The answer is a JSON 413 naming the limit.

FastAPI's own ``max_body_size`` does the counting too, but its 413 for a declared length
is Starlette's plain-text "Content Too Large", sent from outside every user middleware and
exception handler: it can neither be JSON nor name the limit.

The dataset upload is left alone: it streams to disk under ``VAELAB_DATASET_MAX_BYTES``,
enforced by its route.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large(limit: int) -> str:
    return f"the request body exceeds the limit of {limit} bytes (VAELAB_MAX_REQUEST_BYTES)"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` past the limit: an HTTPException, so that FastAPI's body
    reading passes it on to the exception handlers (anything else becomes a 400)."""

    def __init__(self, limit: int):
        super().__init__(413, too_large(limit))


async def send_413(send: Send, limit: int) -> None:
    body = json.dumps({"detail": too_large(limit)}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def is_upload(scope: Scope) -> bool:
    """The dataset upload route (its own limit, checked as it writes to disk)."""
    return scope.get("method") == "POST" and scope.get("path", "").rstrip("/") == \
        "/api/v1/datasets"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limit: int,
                 exempt: Callable[[Scope], bool] = is_upload):
        self.app, self.limit, self.exempt = app, limit, exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await send_413(send, self.limit)
            return
        seen, started = 0, False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await send_413(send, self.limit)
