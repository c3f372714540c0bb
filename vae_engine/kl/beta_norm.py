"""Normalised beta (Higgins et al. 2017, beta-VAE): beta = beta_norm * N / M in sum mode.

beta_norm is the weight one would use with per-dim means of both terms; converting it to
sum-mode units makes it comparable across data and latent sizes (ENGINE_SPEC section 1).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from vae_engine.kl.base import SCHEMES, KLScheme
from vae_engine.registry import ComponentConfig


class BetaNormSchedule(ComponentConfig):
    """Higgins et al.: beta = beta_norm * N / M in sum mode."""

    paper: ClassVar[str] = "Higgins et al. 2017, beta-VAE (ICLR), section 4"
    summary: ClassVar[str] = (
        "beta = beta_norm * N / M: a beta comparable across data and latent "
        "sizes."
    )

    kind: Literal["beta_norm"] = "beta_norm"
    beta_norm: float = Field(
        default=0.1, ge=0, description="Normalised beta; the sum-mode weight is beta_norm*N/M."
    )


@SCHEMES.register(BetaNormSchedule)
class BetaNorm(KLScheme):
    def weight(self, step: int) -> float:
        # In mean mode the objective already divides D by N and R by M, so beta_norm is the
        # weight as given; in sum mode it is converted. beta_effective is beta_norm*N/M in both.
        if self.ctx.reduction == "mean":
            return float(self.spec.beta_norm)
        return float(self.spec.beta_norm) * self.ctx.data_dims / self.ctx.latent_dims
