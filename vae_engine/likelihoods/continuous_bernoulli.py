"""Continuous Bernoulli decoder (Loaiza-Ganem & Cunningham 2019, eq. 7): config, builder,
registration. The module (log normaliser, mean) is in continuous_bernoulli_nn.py (torch), see
likelihoods/config.py.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from vae_engine.likelihoods.config import LIKELIHOODS
from vae_engine.registry import ComponentConfig


class ContinuousBernoulliLikelihood(ComponentConfig):
    """Continuous Bernoulli (Loaiza-Ganem & Cunningham 2019) with its log normaliser."""

    paper: ClassVar[str] = (
        "Loaiza-Ganem & Cunningham 2019, The continuous Bernoulli: fixing a pervasive error in "
        "variational autoencoders (NeurIPS)"
    )

    kind: Literal["continuous_bernoulli"] = "continuous_bernoulli"
    eps: float = Field(default=1e-6, gt=0, lt=0.1, description="lambda clamped to [eps, 1-eps]")
    dequantize: bool = Field(
        default=False,
        description="uniform dequantisation of 8-bit data, x~ = (255x + u)/256: a fresh u per "
        "training batch, a fixed one for evaluation; bits/dim then bound the discrete "
        "log-likelihood (+ log 256 per dim)",
    )


@LIKELIHOODS.register(ContinuousBernoulliLikelihood)
def build_continuous_bernoulli(spec: ContinuousBernoulliLikelihood) -> Any:
    from vae_engine.likelihoods.continuous_bernoulli_nn import ContinuousBernoulli

    return ContinuousBernoulli(spec)
