"""KL weighting: schedules and controllers, rate estimators and rate modifiers.

Importing this package registers every built-in component; the import order below is the
registration order, which is the order of the spec's unions (and so of the tags listed in a
validation error). Importing it does not import torch: ``rate_term`` (which needs the model
output types) is loaded on first use.
"""

from __future__ import annotations

from typing import Any

# isort: off
from vae_engine.kl import (  # noqa: F401  (registration, in union order)
    constant,
    beta_norm,
    linear_warmup,
    sigmoid,
    cyclical,
    capacity,
    dual_ascent,
    pi_controller,
    geco,
    analytic,
    batch_stats,
    free_bits,
    balancing,
)
# isort: on
from vae_engine.kl.base import (
    ESTIMATORS,
    MODIFIERS,
    SCHEMES,
    KLScheme,
    ModifierConfig,
    SchemeContext,
)


def build_scheme(spec: Any, ctx: SchemeContext) -> KLScheme:
    return SCHEMES.get(spec.kind, "kl.schedule.kind")(spec, ctx)


def __getattr__(name: str) -> Any:
    if name == "rate_term":  # torch, only where training happens
        from vae_engine.kl.rate import rate_term

        return rate_term
    raise AttributeError(name)


__all__ = ["ESTIMATORS", "MODIFIERS", "SCHEMES", "KLScheme", "ModifierConfig", "SchemeContext",
           "build_scheme", "rate_term"]
