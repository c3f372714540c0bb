"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from service.api.deps import SettingsDep
from service.db.session import get_engine

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(settings: SettingsDep) -> JSONResponse:
    """The database answers and is migrated, and the broker accepts a connection."""
    from service.db.migrate import NotMigratedError, check

    checks: dict[str, str] = {}
    try:
        with get_engine(settings.db_url).connect() as conn:
            conn.execute(text("SELECT 1"))
        check(settings.db_url)
        checks["database"] = "ok"
    except NotMigratedError as exc:
        checks["database"] = str(exc)
    except Exception as exc:  # noqa: BLE001
        checks["database"] = f"unreachable: {type(exc).__name__}: {exc}"
    try:
        from worker.celery_app import app_for

        with app_for(settings).connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["broker"] = f"unreachable: {type(exc).__name__}: {exc}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                        status_code=200 if ok else 503)
