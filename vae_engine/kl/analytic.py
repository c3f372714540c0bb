"""The analytic per-example KL (Kingma & Welling 2014, appendix B; ENGINE_SPEC section 1):

    KL_bj = 0.5 (mu_bj^2 + sigma_bj^2 - 1 - log sigma_bj^2)

per latent unit, to the (conditional) prior; the model computes it (``ModelOutput.kl``), so
this estimator only hands it on. It is the default ``kl.estimator``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from vae_engine.kl.base import ESTIMATORS
from vae_engine.registry import ComponentConfig

if TYPE_CHECKING:
    import torch

    from vae_engine.models.base import ModelOutput


class AnalyticEstimator(ComponentConfig):
    """Per-example closed-form KL(q(z|x) || p(z)), summed over latent units."""

    paper: ClassVar[str] = (
        "Kingma & Welling 2014, Auto-Encoding Variational Bayes (ICLR), appendix B"
    )
    summary: ClassVar[str] = (
        "Per-example closed-form KL(q(z|x) || p(z)), summed over latent units."
    )

    name: Literal["analytic"] = "analytic"


@ESTIMATORS.register(AnalyticEstimator)
def analytic_estimate(out: ModelOutput) -> tuple[torch.Tensor, dict[str, float]]:
    """(B, M) per-example, per-unit KL; nothing extra to log."""
    return out.kl, {}
