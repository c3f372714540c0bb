"""Gaussian decoder with the sigma-VAE variance modes (Rybkin, Daniilidis & Levine 2021,
"Simple and Effective VAE Training with Calibrated Decoders", ICML): config, builder,
registration. The module (``-log N(x; mu, sigma^2)`` per dim, softclip) is in gaussian_nn.py
(torch), see likelihoods/config.py.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from vae_engine.likelihoods.config import LIKELIHOODS
from vae_engine.likelihoods.sigma_modes import SigmaMode
from vae_engine.registry import ComponentConfig


class GaussianLikelihood(ComponentConfig):
    """Gaussian decoder with one of the sigma-VAE variance modes (Rybkin et al. 2021)."""

    paper: ClassVar[str] = (
        "Rybkin et al. 2021, Simple and Effective VAE Training with Calibrated Decoders (ICML)"
    )

    examples: ClassVar[tuple[dict[str, Any], ...]] = (
        {}, {"sigma_value": 0.1}, {"sigma": "learned_shared"}, {"sigma": "optimal_per_image"},
    )

    kind: Literal["gaussian"] = "gaussian"
    sigma: SigmaMode = Field(default="fixed", description="how the decoder variance is set")
    sigma_value: float = Field(default=1.0, gt=0, description="sigma of the fixed mode")
    min_log_sigma: float = Field(
        default=-6.0, le=0, description="floor of log sigma (sigma-VAE softclip)"
    )
    dequantize: bool = Field(
        default=False,
        description="uniform dequantisation of 8-bit data, x~ = (255x + u)/256: a fresh u per "
        "training batch, a fixed one for evaluation; bits/dim then bound the discrete "
        "log-likelihood (+ log 256 per dim)",
    )


@LIKELIHOODS.register(GaussianLikelihood)
def build_gaussian(spec: GaussianLikelihood) -> Any:
    from vae_engine.likelihoods.gaussian_nn import Gaussian

    return Gaussian(spec)
