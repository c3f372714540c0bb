"""Error bodies: 422s that name every bad field by its full path (``spec.kl.schedule.beta``),
capped in size so that a huge bad input never makes a huge answer;
405s and OPTIONS answers whose ``Allow`` lists every method of the path."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from service.core.redact import without_server_paths

# A 422 lists at most this many errors, each message and field cut to these lengths: a
# 3.6 MB body of unknown keys once answered with a 13.5 MB list.
MAX_ERRORS = 20
MAX_MESSAGE = 300
MAX_FIELD = 200


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def capped(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    """At most :data:`MAX_ERRORS` items of bounded length; the rest counted in a last item."""
    out = [{"field": _cut(str(e.get("field", "body")), MAX_FIELD),
            "message": _cut(str(e.get("message", "invalid")), MAX_MESSAGE)}
           for e in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        out.append({"field": "body",
                    "message": f"and {len(errors) - MAX_ERRORS} more errors not shown"})
    return out


def unprocessable(errors: list[dict[str, str]]) -> JSONResponse:
    return JSONResponse({"detail": capped(errors)}, status_code=422)


def spec_errors(spec: Any) -> list[dict[str, str]]:
    """The engine's verdict on a spec, fields prefixed with ``spec.``; [] when valid."""
    from vae_engine.errors import SpecError
    from vae_engine.spec import parse_spec

    try:
        parse_spec(spec)
    except SpecError as exc:
        return spec_error_list(exc)
    return []


def spec_error_list(exc: Any) -> list[dict[str, str]]:
    """A :class:`vae_engine.errors.SpecError` as 422 items, fields prefixed with ``spec.``."""
    return [
        {"field": "spec" if e["field"] == "<root>" else f"spec.{e['field']}",
         "message": e["message"]}
        for e in exc.errors
    ]


async def validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    spec_in_error = False
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        field = ".".join(loc) or "body"
        spec_in_error |= bool(loc) and loc[0] == "spec"
        errors.append({"field": field, "message": e.get("msg", "invalid")})
    body = exc.body if isinstance(exc.body, dict) else None
    if body is not None and "spec" in body and not spec_in_error:
        # the envelope is bad too: still report every bad field of the spec in one go
        errors.extend(spec_errors(body["spec"]))
    return unprocessable(errors)


async def http_error_handler(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's handler, with 422 details capped (and a plain-text one made a list, the
    documented shape), absolute server paths cut from messages, and 405s listing every
    method of the path."""
    settings = request.app.state.settings
    if exc.status_code == 422:
        detail = exc.detail
        if not isinstance(detail, list):
            detail = [{"field": "body", "message": str(detail)}]
        return unprocessable([{**e, "message": without_server_paths(str(e.get("message")),
                                                                    settings)}
                              for e in detail])
    if isinstance(exc.detail, str):  # a file name in a message: never the server's path
        exc = StarletteHTTPException(exc.status_code,
                                     without_server_paths(exc.detail, settings), exc.headers)
    if exc.status_code == 405:
        allow = allowed_methods(request)
        if request.method == "OPTIONS" and allow:
            return Response(status_code=204, headers={"Allow": ", ".join(allow)})
        exc = StarletteHTTPException(405, exc.detail, headers={"Allow": ", ".join(allow)})
    return await http_exception_handler(request, exc)


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this path, plus OPTIONS (Starlette's 405 names
    only the methods of the first route whose path matched)."""
    routes = request.app.router.routes
    allowed = [m for m in METHODS
               if any(r.matches({**request.scope, "method": m})[0] == Match.FULL
                      for r in routes)]
    return [*allowed, "OPTIONS"] if allowed else []


def unavailable_handler(retry_after_s: int) -> Any:
    """The handler for :data:`service.db.session.UNAVAILABLE`: the database cannot be reached
    (down, restarting, frozen past its timeouts, pool exhausted): a JSON 503 with
    Retry-After, never a 500 or a hang."""
    import logging

    from service.db.session import note_unavailable

    log = logging.getLogger(__name__)

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        note_unavailable(request.app.state.settings.db_url)
        log.warning("%s %s: database unavailable: %s", request.method, request.url.path,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return JSONResponse(
            {"detail": "the database is unavailable; try again shortly"}, status_code=503,
            headers={"Retry-After": str(retry_after_s)})

    return handler
