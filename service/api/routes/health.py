"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api.deps import SettingsDep
from service.core.queue import check_broker
from service.db.migrate import check_database

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "The database or the broker is "
                                                     "down (checks name which)."}})
def readyz(settings: SettingsDep) -> JSONResponse:
    """The database answers and is migrated, and the broker accepts a connection."""
    checks = {"database": check_database(settings.db_url), "broker": check_broker(settings)}
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                        status_code=200 if ok else 503,
                        headers=None if ok else {"Retry-After": str(settings.db_retry_after_s)})
