"""Discretized logistic likelihood for 8-bit images (Salimans et al. 2017, PixelCNN++, eq. 2;
one mixture component as in NVAE's ``DiscLogistic``): config, builder, registration. The
module is in discretized_logistic_nn.py (torch), see likelihoods/config.py.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from vae_engine.likelihoods.config import LIKELIHOODS
from vae_engine.registry import ComponentConfig


class DiscretizedLogisticLikelihood(ComponentConfig):
    """Discretized logistic per pixel: a probability of each 8-bit value (bits/dim comparable
    with published numbers)."""

    paper: ClassVar[str] = (
        "Salimans et al. 2017, PixelCNN++ (ICLR), eq. 2; Vahdat & Kautz 2020, NVAE (NeurIPS)"
    )
    summary: ClassVar[str] = (
        "Discretized logistic (PixelCNN++/NVAE, one component): a mass function of 8-bit "
        "pixels, so bits/dim are a discrete log-likelihood"
    )

    kind: Literal["discretized_logistic"] = "discretized_logistic"
    min_log_scale: float = Field(
        default=-7.0, le=0, description="floor of the logistic log-scale (PixelCNN++: -7)"
    )


@LIKELIHOODS.register(DiscretizedLogisticLikelihood)
def build_discretized_logistic(spec: DiscretizedLogisticLikelihood) -> Any:
    from vae_engine.likelihoods.discretized_logistic_nn import DiscretizedLogistic

    return DiscretizedLogistic(spec)
