"""Architectures. Importing this package registers every built-in architecture.

The import order below is the registration order, hence the order of the spec's ``model``
union. Nothing here imports torch: the networks load when :func:`build_model` runs.
"""

from __future__ import annotations

from typing import Any

# isort: off
from vae_engine.models import mlp, conv, hierarchical  # noqa: F401  (registration, in order)
# isort: on
from vae_engine.models.config import ARCHITECTURES, ArchitectureConfig


def build_model(spec: Any, data_shape: tuple[int, int, int], out_channels: int) -> Any:
    """The VAEModel for ``spec.arch``; unknown archs raise SpecError listing valid ones."""
    return ARCHITECTURES.get(spec.arch, "model.arch")(spec, data_shape, out_channels)


def __getattr__(name: str) -> Any:
    if name in ("ModelOutput", "VAEModel"):  # torch, only where models are used
        from vae_engine.models import base

        return getattr(base, name)
    raise AttributeError(name)


__all__ = ["ARCHITECTURES", "ArchitectureConfig", "ModelOutput", "VAEModel", "build_model"]
