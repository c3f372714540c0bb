"""Likelihood configs: the registry, importable without torch.

A likelihood is split in two modules because ``nn.Module`` subclasses need torch when the
class is defined, and the API process validates specs without importing torch (2.3 s, 250 MB):
``<kind>.py`` holds the config, its ``build()`` and the registration; ``<kind>_nn.py`` holds
the module, imported by ``build()`` on first use (as HF transformers keeps configuration_*.py
apart from modeling_*.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vae_engine.registry import Registry

# kind -> build(spec) -> Likelihood
LIKELIHOODS: Registry[Callable[..., Any]] = Registry("likelihood", tag="kind",
                                                     field="likelihood.kind")
