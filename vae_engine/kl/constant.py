"""Constant beta (ENGINE_SPEC section 2.1).

beta = 1 is the plain VAE of Kingma & Welling 2014; beta > 1 is Higgins et al. 2017.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from vae_engine.kl.base import SCHEMES, KLScheme
from vae_engine.registry import ComponentConfig


class ConstantSchedule(ComponentConfig):
    """w = beta (beta = 1 is the plain VAE)."""

    paper: ClassVar[str] = "Higgins et al. 2017, beta-VAE (ICLR)"
    summary: ClassVar[str] = "Fixed KL weight beta (1 = plain ELBO)."

    kind: Literal["constant"] = "constant"
    beta: float = Field(default=1.0, ge=0, description="The KL weight beta.")


@SCHEMES.register(ConstantSchedule)
class Constant(KLScheme):
    def weight(self, step: int) -> float:
        return float(self.spec.beta)
