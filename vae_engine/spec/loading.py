"""Reading specs: validation into one SpecError, files, host paths, the JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
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
    """Load a spec from a YAML or JSON file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        msg = f"cannot read {p}: {exc.strerror}"
        raise SpecError([{"field": "<file>", "message": msg}]) from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        msg = str(exc).splitlines()[0]
        msg = f"{p} is not valid YAML/JSON: {msg}"
        raise SpecError([{"field": "<file>", "message": msg}]) from None
    return parse_spec(data)


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


def spec_json_schema() -> dict[str, Any]:
    return TrainSpec.model_json_schema()
