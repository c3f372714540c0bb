"""Where a job may read its data: every field a component declares as a host file
(``user_file_fields``, e.g. the npz dataset's ``path``) is confined to
``VAELAB_DATASET_ROOT``, so an API user cannot make a worker (or the API, for traversals)
read an arbitrary file. Components without such fields pass through."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from service.artifact_paths import UnsafePath, resolve_inside


class UnsafeUserFile(UnsafePath):
    """A declared file field points outside the dataset root; ``field`` is its dotted path
    within the spec (``dataset.path``)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def confine_dataset(spec: dict[str, Any], root: Path) -> dict[str, Any]:
    """``spec`` (a parsed spec, as JSON) with each declared file field replaced by its
    resolved absolute path inside ``root`` (what the worker then reads); raises
    :class:`UnsafeUserFile` when a path is outside ``root``."""
    from vae_engine.spec import parse_spec, user_files

    files = user_files(parse_spec(spec))
    if not files:
        return spec
    out = copy.deepcopy(spec)
    for dotted, value in files.items():
        section, field = dotted.split(".", 1)
        try:
            out[section][field] = str(resolve_inside(root, str(value)))
        except UnsafePath as exc:
            raise UnsafeUserFile(dotted, str(exc)) from None
    return out
