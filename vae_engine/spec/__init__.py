"""The typed job spec: the single source of truth shared by the engine, the CLI and the API.

Every section is a pydantic v2 model with ``extra="forbid"`` so that a typo is an error, and
every choice of component (dataset, architecture, likelihood, KL schedule, modifier,
estimator) is derived from its registry (``vae_engine.registry``), where each component's
config sits next to its implementation. ``spec_json_schema()`` is the exported JSON Schema.
Validation errors are collected across the whole document; :func:`parse_spec` turns them
into one :class:`SpecError` naming every bad field by its dotted path.

Modules, one concern each:

- ``unions``: spec fields whose choices come from a registry;
- ``sections``: optimizer, training-loop and evaluation settings;
- ``kl``: the ``kl`` section (schedule x modifiers x estimator x reduction);
- ``train``: ``TrainSpec``, its cross-field checks and the rebuild on registry changes;
- ``errors``, ``loading``: error formatting; parsing, files, host paths, JSON Schema;
- ``sweep``, ``sweep_paths``, ``sweep_errors``: expanding a base spec and a grid into points.

Importing this package does not import torch (the API process validates specs without it).
"""

from __future__ import annotations

from typing import Any

from vae_engine.errors import SpecError
from vae_engine.registry import ComponentConfig, Section
from vae_engine.spec.errors import CrossFieldError, format_validation_error
from vae_engine.spec.kl import KLSpec
from vae_engine.spec.loading import (
    load_spec,
    parse_spec,
    reading_from,
    spec_json_schema,
    user_files,
)
from vae_engine.spec.sections import EvalSpec, OptimSpec, TrainSection
from vae_engine.spec.sweep import build_sweep
from vae_engine.spec.train import REGISTRIES, TrainSpec


def __getattr__(name: str) -> Any:
    """A registered component's config by class name (``vae_engine.spec.NpzData``).

    Configs live with their components; this keeps the names importable from here, where
    they were defined before, without a list to maintain."""
    for registry in REGISTRIES:
        for config in registry.configs():
            if config.__name__ == name:
                return config
    raise AttributeError(f"module 'vae_engine.spec' has no attribute {name!r}")


__all__ = ["ComponentConfig", "CrossFieldError", "EvalSpec", "KLSpec", "OptimSpec", "Section",
           "SpecError", "TrainSection", "TrainSpec", "build_sweep", "format_validation_error",
           "load_spec", "parse_spec", "reading_from", "spec_json_schema", "user_files"]
