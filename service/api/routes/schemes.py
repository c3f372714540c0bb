"""What can be put in a spec: the engine's catalogue when it has one, and the JSON Schema."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["schemes"])


def _catalogue() -> Any:
    for name in ("vae_engine.catalogue", "vae_engine.catalog"):
        if importlib.util.find_spec(name) is not None:
            mod = importlib.import_module(name)
            fn = getattr(mod, "catalogue", None) or getattr(mod, "catalog", None)
            if callable(fn):
                return fn()
    return None


@router.get("/schemes")
def schemes() -> dict[str, Any]:
    from vae_engine.spec import spec_json_schema

    return {"catalogue": _catalogue(), "spec_schema": spec_json_schema()}
