"""Linear KL warm-up (Sonderby et al. 2016), in NVAE's form (Vahdat & Kautz 2020, kl_coeff):

    w(t) = beta_max * max(min((t - t_const) / t_anneal, 1), w_min)
    t_anneal = anneal_portion * T,  t_const = const_portion * T.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from vae_engine.kl.base import SCHEMES, KLScheme
from vae_engine.registry import ComponentConfig


def warmup_weight(
    step: int, total_steps: int, anneal_portion: float, const_portion: float, min_weight: float
) -> float:
    t_anneal = anneal_portion * total_steps
    t_const = const_portion * total_steps
    return max(min((step - t_const) / t_anneal, 1.0), min_weight)


class LinearWarmupSchedule(ComponentConfig):
    """NVAE warm-up: max(min((t - t_const)/t_anneal, 1), w_min) * beta_max."""

    paper: ClassVar[str] = "Sonderby et al. 2016, Ladder VAE; NVAE (Vahdat & Kautz 2020) form"
    summary: ClassVar[str] = (
        "KL weight ramps linearly from w_min to beta_max over a portion of "
        "training."
    )
    warmup: ClassVar[bool] = True

    kind: Literal["linear_warmup"] = "linear_warmup"
    beta_max: float = Field(default=1.0, ge=0, description="Weight reached after the warm-up.")
    anneal_portion: float = Field(
        default=0.3, gt=0, le=1, description="Fraction of total steps spent ramping (t_anneal/T)."
    )
    const_portion: float = Field(
        default=1e-4, ge=0, lt=1, description="Fraction of total steps held at w_min first."
    )
    min_weight: float = Field(default=1e-4, ge=0, description="Floor w_min of the ramp.")


@SCHEMES.register(LinearWarmupSchedule)
class LinearWarmup(KLScheme):
    def _ramp(self, step: int) -> float:
        s = self.spec
        return warmup_weight(
            step, self.ctx.total_steps, s.anneal_portion, s.const_portion, s.min_weight
        )

    def weight(self, step: int) -> float:
        return float(self.spec.beta_max) * self._ramp(step)

    def in_warmup(self, step: int) -> bool:
        return self._ramp(step) < 1.0
