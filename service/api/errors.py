"""422 bodies that name every bad field by its full path (``spec.kl.schedule.beta``)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


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
    return JSONResponse({"detail": errors}, status_code=422)


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
