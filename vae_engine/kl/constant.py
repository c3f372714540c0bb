"""Constant beta (ENGINE_SPEC section 2.1).

beta = 1 is the plain VAE of Kingma & Welling 2014; beta > 1 is Higgins et al. 2017.
"""

from __future__ import annotations

from vae_engine.kl.base import SCHEMES, KLScheme


@SCHEMES.register("constant")
class Constant(KLScheme):
    summary = "Fixed KL weight beta (1 = plain ELBO)."
    paper = "Higgins et al. 2017, beta-VAE (ICLR)"

    def weight(self, step: int) -> float:
        return float(self.spec.beta)
