"""Decoder likelihoods p(x|z) (ENGINE_SPEC section 3). Importing this package registers them."""

from __future__ import annotations

from typing import Any

from vae_engine.likelihoods import bernoulli, continuous_bernoulli, gaussian  # noqa: F401
from vae_engine.likelihoods.base import LIKELIHOODS, Likelihood
from vae_engine.likelihoods.continuous_bernoulli import cb_log_norm, cb_mean
from vae_engine.likelihoods.gaussian import softclip


def build_likelihood(spec: Any) -> Likelihood:
    """The likelihood for ``spec.kind``; unknown kinds raise SpecError listing valid ones."""
    return LIKELIHOODS.get(spec.kind, "likelihood.kind")(spec)


__all__ = ["LIKELIHOODS", "Likelihood", "build_likelihood", "cb_log_norm", "cb_mean", "softclip"]
