"""What can be put in a spec: the engine's catalogue (generated from its registries) and the
spec's JSON Schema."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["schemes"])


@router.get("/schemes")
def schemes() -> dict[str, Any]:
    from vae_engine.catalogue import catalogue
    from vae_engine.spec import spec_json_schema

    return {"catalogue": catalogue(), "spec_schema": spec_json_schema()}
