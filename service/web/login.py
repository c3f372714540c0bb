"""Signing the dashboard in: ``/login?token=...`` checks an API token and keeps it in an
HttpOnly, SameSite=Strict cookie that the API accepts as well as the Bearer header (the
pages' scripts call the public API with it). ``vaelab serve`` prints such a link once, as
Jupyter does; without a token the page asks for one. ``/logout`` forgets it."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from service.api.deps import TOKEN_COOKIE, SessionDep
from service.db import users as users_db
from service.web import TEMPLATE_DIR

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=TEMPLATE_DIR)
COOKIE_MAX_AGE_S = 30 * 24 * 3600


def _local(path: str) -> str:
    """Only a path on this server is a place to go back to (no open redirect)."""
    return path if path.startswith("/") and not path.startswith("//") else "/"


def page_user(request: Request, session: SessionDep) -> None:
    """The pages' guard: a browser without a valid token cookie (or Bearer header, as the
    API takes) is sent to /login."""
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    secret = bearer.strip() if scheme.lower() == "bearer" else request.cookies.get(TOKEN_COOKIE)
    if not secret or users_db.authenticate(session, secret) is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, "sign in first",
                            headers={"Location": f"/login?next={quote(back, safe='')}"})


@router.get("/login", response_class=HTMLResponse)
def login(request: Request, session: SessionDep,
          token: Annotated[str | None, Query(description="An API token.")] = None,
          next: Annotated[str, Query()] = "/") -> Response:  # noqa: A002 - the query name
    error = None
    if token:
        if users_db.authenticate(session, token.strip()) is not None:
            resp = RedirectResponse(_local(next), status_code=303)  # drops ?token= from the bar
            resp.set_cookie(TOKEN_COOKIE, token.strip(), max_age=COOKIE_MAX_AGE_S, path="/",
                            httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
            return resp
        error = "That token is unknown, revoked or expired."
    return templates.TemplateResponse(request, "login.html", {
        "page": "login", "next": _local(next), "error": error},
        status_code=401 if error else 200)


@router.get("/logout")
def logout() -> Response:
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(TOKEN_COOKIE, path="/")
    return resp
