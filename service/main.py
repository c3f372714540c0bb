"""The FastAPI application factory.

``uvicorn --factory service.main:create_app`` (or ``vaelab api`` / ``vaelab serve``). Start-up
refuses an un-migrated database, naming the command to run. Importing this module does not
import torch: only ``vae_engine.spec`` (pydantic + yaml) is used, inside the handlers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.deps import current_identity
from service.api.errors import http_error_handler, unavailable_handler, validation_handler
from service.api.hygiene import InputHygieneMiddleware
from service.api.limits import BodyLimitMiddleware
from service.api.responses import AUTH, COMMON
from service.api.routes import (
    artifacts,
    checkpoints,
    compare,
    datasets,
    events,
    health,
    jobs,
    metrics,
    prometheus,
    queue,
    rate_distortion,
    samples,
    schemes,
    storage,
    sweeps,
    users,
)
from service.core.config import Settings, get_settings
from service.core.dispatcher import Dispatcher
from service.db.models import Job
from service.db.session import UNAVAILABLE
from service.web import STATIC_DIR, docs, login, pages

log = logging.getLogger("vaelab.api")

API_DESCRIPTION = """Train variational autoencoders on the lab's workers.

Submit a TrainSpec to `POST /api/v1/jobs`, follow it on `GET /api/v1/jobs/{id}/events`
(Server-Sent Events), read its metrics from `GET /api/v1/jobs/{id}/metrics`.
Every `/api/v1` route needs an API token: `Authorization: Bearer <token>` (`vaelab users
create`, `vaelab tokens create`; the embedded server writes its admin's token to
`<data dir>/admin.token`). Without a valid one the answer is 401; a refusal is a 403 that
says why. `/healthz`, `/readyz` and `/metrics` need none.
"""

# every /api/v1 router: a token is required; 401/403 documented once, here
API_ROUTERS = (jobs, metrics, events, rate_distortion, artifacts, checkpoints, samples, sweeps,
               compare, schemes, storage, datasets, queue)
OPEN_ROUTERS = (health, prometheus)


def _measure_latency(app: FastAPI, settings: Settings) -> None:
    """Every request's latency into ``vaelab_api_request_seconds`` (a plain ASGI middleware:
    it leaves streamed responses alone), labelled by its route template
    (``/api/v1/jobs/{job_id}``), not its path, so ids do not multiply series."""
    from service.core.prometheus import LatencyMiddleware, make_registry

    app.state.prometheus, latency = make_registry(settings.db_url)
    app.add_middleware(LatencyMiddleware, latency=latency)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from service.core.reaper import Reaper
        from service.db.migrate import NotMigratedError, check

        settings.ensure_dirs()
        try:
            check(settings.db_url)
        except NotMigratedError as exc:
            log.error("%s", exc)
            raise SystemExit(f"vaelab: {exc}") from None
        reaper = None
        if settings.reaper_enabled:
            reaper = Reaper(settings, app.state.enqueue)
            reaper.start()
        # a thread per lifespan (an app may be started more than once, e.g. by tests)
        dispatcher = Dispatcher(settings) if settings.dispatch_enabled else None
        app.state.dispatcher = dispatcher
        if dispatcher is not None:
            dispatcher.start()
        yield
        app.state.dispatcher = None
        if dispatcher is not None:
            dispatcher.stop()
        if reaper is not None:
            reaper.stop()

    app = FastAPI(title="vaelab", version="0.1.0", description=API_DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None)  # service.web.docs
    app.state.settings = settings

    # the dispatcher is the only sender to the broker; a submit commits the job as waiting
    # and wakes it (app.state.enqueue keeps its name for the routes' EnqueueDep)
    app.state.dispatcher = None

    def enqueue(_job: Job) -> None:
        dispatcher = app.state.dispatcher
        if dispatcher is not None:
            dispatcher.wake()

    app.state.enqueue = enqueue
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_middleware(InputHygieneMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_request_bytes)
    for exc_type in UNAVAILABLE:
        app.add_exception_handler(exc_type, unavailable_handler(settings.db_retry_after_s))
    _measure_latency(app, settings)
    authenticated = [Depends(current_identity)]
    for router in [m.router for m in API_ROUTERS] + [users.users, users.tokens]:
        app.include_router(router, dependencies=authenticated,
                           responses={**COMMON, **AUTH})
    for module in OPEN_ROUTERS:
        app.include_router(module.router, responses=COMMON)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(docs.router)
    app.include_router(login.router)
    app.include_router(pages.router, dependencies=[Depends(login.page_user)])
    return app
