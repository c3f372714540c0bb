"""Normalised beta (Higgins et al. 2017, beta-VAE): beta = beta_norm * N / M in sum mode.

beta_norm is the weight one would use with per-dim means of both terms; converting it to
sum-mode units makes it comparable across data and latent sizes (ENGINE_SPEC section 1).
"""

from __future__ import annotations

from vae_engine.kl.base import SCHEMES, KLScheme


@SCHEMES.register("beta_norm")
class BetaNorm(KLScheme):
    summary = "beta = beta_norm * N / M: a beta comparable across data and latent sizes."
    paper = "Higgins et al. 2017, beta-VAE (ICLR), section 4"

    def weight(self, step: int) -> float:
        # In mean mode the objective already divides D by N and R by M, so beta_norm is the
        # weight as given; in sum mode it is converted. beta_effective is beta_norm*N/M in both.
        if self.ctx.reduction == "mean":
            return float(self.spec.beta_norm)
        return float(self.spec.beta_norm) * self.ctx.data_dims / self.ctx.latent_dims
