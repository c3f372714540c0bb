"""Pixel-wise Bernoulli decoder (Kingma & Welling 2014): config, builder, registration.

ENGINE_SPEC section 3: ``-log p(x|z) = BCEWithLogits(logits, x)``; the module is in
bernoulli_nn.py (torch), see likelihoods/config.py.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from vae_engine.likelihoods.config import LIKELIHOODS
from vae_engine.registry import ComponentConfig


class BernoulliLikelihood(ComponentConfig):
    """Pixel-wise Bernoulli; only a normalised density for binary data."""

    paper: ClassVar[str] = "Kingma & Welling 2014, Auto-Encoding Variational Bayes (ICLR)"

    kind: Literal["bernoulli"] = "bernoulli"


@LIKELIHOODS.register(BernoulliLikelihood)
def build_bernoulli(spec: BernoulliLikelihood) -> Any:
    from vae_engine.likelihoods.bernoulli_nn import Bernoulli

    return Bernoulli(spec)
