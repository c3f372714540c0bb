"""``GET /metrics``: Prometheus' text format (:mod:`service.core.prometheus`)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request, Response

from service.core.prometheus import exposition

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
async def prometheus_metrics(request: Request) -> Response:
    body, content_type = await anyio.to_thread.run_sync(exposition,
                                                        request.app.state.prometheus)
    return Response(body, media_type=content_type)
