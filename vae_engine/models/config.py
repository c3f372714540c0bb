"""Architecture configs: their base class and registry, importable without torch.

An architecture is split in two modules because ``nn.Module`` subclasses need torch when the
class is defined, and the API process validates specs without importing torch (2.3 s, 250 MB):
``<arch>.py`` holds the config, its ``build()`` and the registration; ``<arch>_nn.py`` holds
the network, imported by ``build()`` on first use (as HF transformers keeps configuration_*.py
apart from modeling_*.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from vae_engine.registry import ComponentConfig, Registry


class ArchitectureConfig(ComponentConfig):
    """Config of an architecture; ``grouped`` models have several latent groups."""

    grouped: ClassVar[bool] = False
    size_field: ClassVar[str] = "model.hidden"  # the field the spec budget names

    def latent_groups(self) -> int:
        """Number of latent groups (1 for a flat latent vector)."""
        return 1

    def size_estimate(self, shape: tuple[int, int, int], out_channels: int) -> tuple[int, int]:
        """(parameters, activation values per example, forward) of the model on (C, H, W)
        data with ``out_channels`` decoder channels, estimated without building it
        (vae_engine/spec/budget.py); (0, 0) when unknown."""
        return 0, 0


# arch -> build(spec, data_shape=(C, H, W), out_channels=P*C) -> VAEModel
ARCHITECTURES: Registry[Callable[..., Any]] = Registry("architecture", tag="arch",
                                                        field="model.arch")


def is_grouped(model: Any) -> bool:
    return bool(getattr(type(model), "grouped", False))


def grouped_archs() -> str:
    """The registered architectures with latent groups, quoted: "'hierarchical'"."""
    return ", ".join(repr(e.name) for e in ARCHITECTURES.entries() if e.config.grouped)
