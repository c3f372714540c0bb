"""Decoder likelihoods p(x|z) (ENGINE_SPEC section 3). Importing this package registers them.

The import order below is the registration order, hence the order of the spec's
``likelihood`` union. Nothing here imports torch: the modules and their helpers
(``Likelihood``, ``cb_log_norm``, ``cb_mean``, ``softclip``) load on first use.
"""

from __future__ import annotations

from typing import Any

# isort: off
from vae_engine.likelihoods import bernoulli, continuous_bernoulli, gaussian  # noqa: F401
from vae_engine.likelihoods import discretized_logistic  # noqa: F401
# isort: on
from vae_engine.likelihoods.config import LIKELIHOODS

_LAZY = {
    "Likelihood": "vae_engine.likelihoods.base",
    "cb_log_norm": "vae_engine.likelihoods.continuous_bernoulli_nn",
    "cb_mean": "vae_engine.likelihoods.continuous_bernoulli_nn",
    "softclip": "vae_engine.likelihoods.gaussian_nn",
}


def build_likelihood(spec: Any) -> Any:
    """The Likelihood for ``spec.kind``; unknown kinds raise SpecError listing valid ones."""
    return LIKELIHOODS.get(spec.kind, "likelihood.kind")(spec)


def __getattr__(name: str) -> Any:
    if name in _LAZY:  # torch, only where likelihoods are evaluated
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


__all__ = ["LIKELIHOODS", "Likelihood", "build_likelihood", "cb_log_norm", "cb_mean", "softclip"]
