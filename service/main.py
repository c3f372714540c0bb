"""The FastAPI application factory.

``uvicorn --factory service.main:create_app`` (or ``vaelab api`` / ``vaelab serve``). Start-up
refuses an un-migrated database, naming the command to run. Importing this module does not
import torch: only ``vae_engine.spec`` (pydantic + yaml) is used, inside the handlers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles

from service.api.errors import validation_handler
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
)
from service.core.config import Settings, get_settings
from service.core.dispatcher import Dispatcher
from service.db.models import Job
from service.web import STATIC_DIR, docs, pages

log = logging.getLogger("vaelab.api")

API_DESCRIPTION = """Train variational autoencoders on the lab's workers.

Submit a TrainSpec to `POST /api/v1/jobs`, follow it on `GET /api/v1/jobs/{id}/events`
(Server-Sent Events), read its metrics from `GET /api/v1/jobs/{id}/metrics`.
Identify yourself with the `X-Vaelab-User` header (no authentication; default `anonymous`).
"""


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
        if dispatcher is not None:
            dispatcher.start()
        yield
        if dispatcher is not None:
            dispatcher.stop()
        if reaper is not None:
            reaper.stop()

    app = FastAPI(title="vaelab", version="0.1.0", description=API_DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None)  # service.web.docs
    app.state.settings = settings

    # the dispatcher is the only sender to the broker; a submit commits the job as waiting
    # and wakes it (app.state.enqueue keeps its name for the routes' EnqueueDep)
    dispatcher = Dispatcher(settings) if settings.dispatch_enabled else None
    app.state.dispatcher = dispatcher

    def enqueue(_job: Job) -> None:
        if dispatcher is not None:
            dispatcher.wake()

    app.state.enqueue = enqueue
    app.add_exception_handler(RequestValidationError, validation_handler)
    _measure_latency(app, settings)
    for module in (jobs, metrics, events, rate_distortion, artifacts, checkpoints, samples,
                   sweeps, compare, schemes, storage, datasets, health, prometheus, queue):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(docs.router)
    app.include_router(pages.router)
    return app
