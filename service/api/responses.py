"""The error answers routes document, in one place: ``responses=`` dicts for the OpenAPI
schema, each with the body actually returned (service/api/errors.py).

Every route gets :data:`COMMON` (``include_router(..., responses=COMMON)`` in main.py): any
request can carry a bad query parameter, a NUL byte or an oversized body. Routers and routes
add what else they can answer: :data:`BY_ID` where a path names a job, sweep or dataset by
id or prefix, :func:`conflict`, :func:`invalid`, :data:`QUEUE_DOWN`. A code a route returns
but does not list fails the contract test (tests/service/test_openapi_contract.py).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FieldProblem(BaseModel):
    field: str = Field(description="The bad field's dotted path (spec.kl.schedule.beta), a "
                                   "query parameter, or 'body'.")
    message: str


class ValidationErrorOut(BaseModel):
    """A 422: every bad field (at most 20, then a count), messages cut to 300 characters."""

    detail: list[FieldProblem]


class MessageOut(BaseModel):
    detail: str


Responses = dict[int | str, dict[str, Any]]


def _message(description: str) -> dict[str, Any]:
    return {"model": MessageOut, "description": description}


COMMON: Responses = {
    413: _message("The body is larger than VAELAB_MAX_REQUEST_BYTES."),
    503: _message("The database (or, where named, the job queue) is unavailable: retry after "
                  "the `Retry-After` seconds."),
    422: {"model": ValidationErrorOut,
          "description": "Bad input: every bad field, named by its path."},
}
BY_ID: Responses = {
    404: _message("Nothing has this id."),
    409: _message("The id prefix is ambiguous."),
}
NOT_FOUND: Responses = {404: _message("Not found.")}
QUEUE_DOWN: Responses = {503: _message("The job queue (broker) is unavailable.")}
QUOTA: Responses = {429: _message("The user's `max_queued` jobs are already waiting.")}
AUTH: Responses = {  # every /api/v1 router (main.py)
    401: _message("No API token, or one that is unknown, revoked or expired (with "
                  "`WWW-Authenticate: Bearer`)."),
    403: _message("The token's user may not do this; the detail says why."),
}


def taken(description: str) -> Responses:
    """A 409 of a route that names no id (a name already taken)."""
    return {409: _message(description)}


def conflict(description: str) -> Responses:
    """The 409 with a route's own description, and the 404/409 of its id."""
    return {**BY_ID, 409: _message(description)}


def invalid(description: str) -> Responses:
    """The 422 with a route's own description."""
    return {422: {"model": ValidationErrorOut, "description": description}}


# A route whose answer is no JSON (the event stream) would list "model" under its own
# media type; its errors are JSON all the same.
STREAM_ERRORS: Responses = {code: {"description": r["description"], "content": {
    "application/json": {"schema": {"$ref": f"#/components/schemas/{r['model'].__name__}"}}}}
    for code, r in {**COMMON, **BY_ID}.items()}
FILES: Responses = {
    403: _message("The stored path leaves the artifact root."),
    410: _message("The file is no longer stored."),
}
BAD_REQUEST: Responses = {400: _message("The request cannot be served as asked.")}
