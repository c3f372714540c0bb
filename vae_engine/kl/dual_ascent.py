"""Dual gradient ascent on beta to a target rate (Peng et al. 2019, "Variational
Discriminator Bottleneck", eq. 8; seed 001; ENGINE_SPEC section 2.6):

    after each step:  beta <- max(0, beta + alpha_beta * (R - I_c))

R is the batch mean of the rate term the weight multiplies (``stats["rate_term"]``): the
analytic rate, or the batch-statistics KL with ``kl.estimator: batch_stats`` as in the seed.
Defaults are the official code's (beta_0 = 0.1, alpha_beta = 1e-5, I_c = 0.1), tuned for a
discriminator bottleneck; for a VAE set I_c in nats per example and a larger step size.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from vae_engine.kl.base import SCHEMES, KLScheme, stat
from vae_engine.registry import ComponentConfig


def dual_ascent_step(beta: float, rate: float, target: float, step_size: float) -> float:
    return max(0.0, beta + step_size * (rate - target))


class DualAscentSchedule(ComponentConfig):
    """Peng et al. (VDB): beta <- max(0, beta + step_size (R - target_rate)) after each step."""

    paper: ClassVar[str] = "Peng et al. 2019, Variational Discriminator Bottleneck (ICLR)"
    summary: ClassVar[str] = (
        "Lagrange multiplier beta updated by dual gradient ascent to hold a target "
        "rate."
    )
    stateful: ClassVar[bool] = True
    examples: ClassVar[tuple[dict[str, Any], ...]] = ({"target_rate": 20.0, "step_size": 0.01},)

    kind: Literal["dual_ascent"] = "dual_ascent"
    target_rate: float = Field(
        default=0.1, ge=0, description="Target rate I_c (nats/example; e.g. 25 for a VAE)."
    )
    beta_init: float = Field(default=0.1, ge=0, description="Initial multiplier beta_0.")
    step_size: float = Field(
        default=1e-5, gt=0, le=10, description="Dual step size alpha_beta (per nat of error)."
    )


@SCHEMES.register(DualAscentSchedule)
class DualAscent(KLScheme):
    """The multiplier and the last error are float64 device tensors (see KLScheme.update)."""

    tensor_fields = ("beta", "error")
    device_stats = True
    graph_safe = True

    def __init__(self, spec: Any, ctx: Any):
        super().__init__(spec, ctx)
        self.beta = self.scalar(spec.beta_init)
        self.error = self.scalar(0.0)  # last R - I_c

    def weight(self, step: int):
        return self.beta

    def objective(self, distortion, rate, step):
        loss, logs = super().objective(distortion, rate, step)
        logs.update(kl_target=float(self.spec.target_rate), controller_error=self.error)
        return loss, logs

    def update(self, step: int, stats: dict[str, Any]) -> None:
        rate = stat(stats, "rate_term", self.device)
        self.error = rate - self.spec.target_rate
        # dual_ascent_step on tensors: max(0, beta + step_size (R - I_c))
        self.beta = (self.beta + self.spec.step_size * (rate - self.spec.target_rate)).clamp_min(
            0.0)

    def state_dict(self) -> dict[str, Any]:
        return {"beta": float(self.beta), "error": float(self.error)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.beta = self.scalar(state["beta"])
        self.error = self.scalar(state["error"])
