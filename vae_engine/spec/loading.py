"""Reading specs: validation into one SpecError, files, host paths, the JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vae_engine.errors import SpecError
from vae_engine.spec.errors import format_validation_error
from vae_engine.spec.train import TrainSpec


def parse_spec(data: Any) -> TrainSpec:
    """Validate a dict into a TrainSpec, raising one SpecError naming every bad field."""
    if not isinstance(data, dict):
        raise SpecError([{"field": "<root>", "message": "the spec must be a mapping"}])
    try:
        return TrainSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(format_validation_error(err)) from None


def load_spec(path: str | Path) -> TrainSpec:
    """Load a spec from a YAML or JSON file; a file that cannot be read or parsed raises
    :class:`vae_engine.clierrors.FileProblem` naming it and the cause."""
    from vae_engine.clierrors import read_document

    return parse_spec(read_document(path))


def user_files(spec: TrainSpec) -> dict[str, str]:
    """Every field of ``spec`` that names a host file, as ``{"dataset.path": value}``.

    Declared by each component (``user_file_fields``), so confinement never depends on a
    component's name."""
    out = {}
    for section in ("dataset", "model", "likelihood"):
        part = getattr(spec, section)
        for field in type(part).user_file_fields:
            out[f"{section}.{field}"] = getattr(part, field)
    return out


def reading_from(part: Any, section: str, files: dict[str, str] | None) -> Any:
    """``part`` (the spec's ``section``) as its loader should see it: each user file field
    named in ``files`` (``{"dataset.path": path to read}``) replaced by that path. The spec
    itself, and so every checkpoint and the resume check, keeps the path the user named (the
    worker reads a verified open descriptor, ``/proc/self/fd/N``, whose number changes
    between attempts)."""
    updates = {f: files[f"{section}.{f}"] for f in type(part).user_file_fields
               if files and f"{section}.{f}" in files}
    return part.model_copy(update=updates) if updates else part


def spec_json_schema() -> dict[str, Any]:
    return TrainSpec.model_json_schema()
