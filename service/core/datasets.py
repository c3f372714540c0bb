"""Where a job may read its data: an ``npz`` dataset's path is confined to
``VAELAB_DATASET_ROOT``, so an API user cannot make a worker (or the API, for traversals)
read an arbitrary file. Builtin datasets have no path and pass through."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from service.artifact_paths import resolve_inside


def confine_dataset(spec: dict[str, Any], root: Path) -> dict[str, Any]:
    """``spec`` (a parsed spec, as JSON) with an npz ``dataset.path`` replaced by its
    resolved absolute path inside ``root`` (what the worker then reads); raises
    :class:`UnsafePath` when the path is outside ``root``."""
    dataset = spec.get("dataset") or {}
    if dataset.get("name") != "npz":
        return spec
    out = copy.deepcopy(spec)
    out["dataset"]["path"] = str(resolve_inside(root, str(dataset.get("path", ""))))
    return out
