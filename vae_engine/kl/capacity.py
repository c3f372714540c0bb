"""Capacity annealing (Burgess et al. 2018, "Understanding disentangling in beta-VAE", eq. 8):

    loss = D + gamma * |R - C_t|,   C_t = min(C_max * t / t_stop, C_max)   (ENGINE_SPEC 2.5)

R is the batch mean of the per-example summed KL. Seed 004's variants "A" (batch mean per
dim, then sum over dims) and "B" (sum over dims, then batch mean) give the same R because
the absolute value is taken after both sums, so there is one implementation. Defaults follow
1Konny/Beta-VAE (gamma = 1000, C_max = 25, t_stop = 1e5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from vae_engine.kl.base import SCHEMES, KLScheme, as_weight
from vae_engine.registry import ComponentConfig

if TYPE_CHECKING:
    import torch


def capacity_at(step: int, c_max: float, c_stop_steps: int) -> float:
    return min(c_max * step / c_stop_steps, c_max)


class CapacitySchedule(ComponentConfig):
    """Burgess et al.: objective D + gamma |R - C_t|, C_t = min(C_max t / t_stop, C_max)."""

    paper: ClassVar[str] = (
        "Burgess et al. 2018, Understanding disentangling in beta-VAE "
        "(arXiv:1804.03599)"
    )
    summary: ClassVar[str] = (
        "Objective D + gamma |R - C_t| with a capacity C_t growing linearly to "
        "C_max."
    )
    warmup: ClassVar[bool] = True

    kind: Literal["capacity"] = "capacity"
    gamma: float = Field(default=1000.0, gt=0, description="Weight gamma of |R - C_t|.")
    c_max: float = Field(default=25.0, ge=0, description="Final capacity C_max (nats/example).")
    c_stop_steps: int = Field(
        default=100_000, ge=1, description="Step t_stop at which the capacity reaches C_max."
    )


@SCHEMES.register(CapacitySchedule)
class Capacity(KLScheme):
    step_values = ("capacity",)
    graph_safe = True

    def capacity(self, step: int) -> float:
        return capacity_at(step, self.spec.c_max, self.spec.c_stop_steps)

    def weight(self, step: int) -> float:
        return float(self.spec.gamma)

    def objective(
        self, distortion: torch.Tensor, rate: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.capacity(step)
        diff = rate - as_weight(c, rate) * self.ctx.rate_scale  # rate's units (sum or mean mode)
        gap = diff.detach()  # read by the trainer with the other logs, not here (no sync)
        logs = {
            "beta": self.spec.gamma * gap.sign().double(),  # d loss / d rate
            "capacity": c,
            "kl_minus_capacity": gap.double() / self.ctx.rate_scale,  # nats per example
        }
        return distortion + self.spec.gamma * diff.abs(), logs

    def in_warmup(self, step: int) -> bool:
        """The capacity ramp counts as a warm-up (for NVAE balancing)."""
        return step < self.spec.c_stop_steps
