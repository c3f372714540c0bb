"""PI controller on beta to a KL set-point (Shao et al. 2020, ControlVAE, eqs. 5-7;
ENGINE_SPEC section 2.7).

    e_t = v_KL - R_t                    (set-point minus measured batch rate)
    P_t = K_p / (1 + exp(e_t))
    I_t = I_{t-1} - K_i e_t             (paper sign; the code stores K_i < 0 and adds)
    beta_t = clip(P_t + I_t + beta_min, beta_min, beta_max)

Anti-windup. The official image code guards the integrator with
``if W_k1 < 0 and W_k1 > 1`` which can never be true, so the integral winds up while beta
sits at a clip and beta then stays pinned long after the error changes sign. Here the
integral does not move further in a direction in which the unclipped output P + I + beta_min
is already outside [beta_min, beta_max], and a step that would carry it outside stops exactly
at the bound (conditional integration with clamping). Integration back towards the range is
never blocked, so beta leaves a clip on the first step after the error changes sign.

Variants: "image" (beta_min = 0, beta_max = 1, fixed set-point) and "disentangling"
(beta_min = 1, no upper clip, set-point v_t = min(start + step_val * floor(t / step_every),
C_max) as in the dSprites code). R_t is ``stats["rate_term"]``, the rate the weight
multiplies. The beta computed from step t's rate applies from step t + 1; before the first
update beta = beta_min.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import Field

from vae_engine.kl.base import SCHEMES, KLScheme, stat
from vae_engine.registry import ComponentConfig

_EXP_MAX = 700.0  # math.exp overflows above ~709


def pi_bounds(spec: Any) -> tuple[float, float]:
    """(beta_min, beta_max) with the variant's defaults filled in."""
    image = spec.variant == "image"
    lo = spec.beta_min if spec.beta_min is not None else (0.0 if image else 1.0)
    hi = spec.beta_max if spec.beta_max is not None else (1.0 if image else math.inf)
    return float(lo), float(hi)


def pi_step(
    integral: float, error: float, kp: float, ki: float, beta_min: float, beta_max: float
) -> tuple[float, float]:
    """One controller step: (new integral, beta)."""
    p = kp / (1.0 + math.exp(min(error, _EXP_MAX)))
    cand = integral - ki * error
    if cand > integral:  # integrating upwards: stop where the output reaches beta_max
        integral = max(integral, min(cand, beta_max - beta_min - p))
    else:  # integrating downwards: stop where the output reaches beta_min
        integral = min(integral, max(cand, -p))
    beta = min(max(p + integral + beta_min, beta_min), beta_max)
    return integral, beta


class PIControllerSchedule(ComponentConfig):
    """Shao et al. (ControlVAE): a PI controller on beta that holds the rate at a set-point."""

    paper: ClassVar[str] = (
        "Shao et al. 2020, ControlVAE: Controllable Variational Autoencoder "
        "(ICML)"
    )
    summary: ClassVar[str] = (
        "PI controller on beta holding the rate at a set-point "
        "(image/disentangling)."
    )
    stateful: ClassVar[bool] = True
    examples: ClassVar[tuple[dict[str, Any], ...]] = (
        {"kp": 0.01, "ki": 0.01, "target_rate": 20.0},
        {"variant": "disentangling", "step_every": 3},
    )

    kind: Literal["pi_controller"] = "pi_controller"
    variant: Literal["image", "disentangling"] = Field(
        default="image",
        description="image: fixed set-point; disentangling: set-point stepped up over training.",
    )
    target_rate: float = Field(
        default=25.0, ge=0,
        description="Set-point v_KL (nats/example); the ceiling C_max for 'disentangling'.",
    )
    kp: float = Field(default=0.01, ge=0, description="Proportional gain K_p.")
    ki: float = Field(default=1e-4, ge=0, description="Integral gain K_i (positive, paper sign).")
    beta_min: float | None = Field(
        default=None, ge=0, description="Lower clip of beta; default 0 (image), 1 (disentangling)."
    )
    beta_max: float | None = Field(
        default=None, gt=0, description="Upper clip of beta; default 1 (image), none (disent.)."
    )
    set_point_start: float = Field(
        default=0.5, ge=0, description="disentangling: initial set-point (nats/example)."
    )
    step_val: float = Field(
        default=0.15, ge=0, description="disentangling: set-point increment per step_every."
    )
    step_every: int = Field(
        default=5000, ge=1, description="disentangling: steps between set-point increments."
    )

    def problems(self, spec: Any) -> list[str]:
        if self.beta_min is not None and self.beta_max is not None:
            if self.beta_min >= self.beta_max:
                return ["kl.schedule.beta_min: must be below kl.schedule.beta_max"]
        return []


def pi_step_tensor(integral, error, kp: float, ki: float, beta_min: float, beta_max: float):
    """:func:`pi_step` on float64 tensors, with no host read: (new integral, beta)."""
    import torch

    p = kp / (1.0 + torch.exp(error.clamp_max(_EXP_MAX)))
    cand = integral - ki * error
    up = torch.maximum(integral, torch.minimum(cand, beta_max - beta_min - p))
    down = torch.minimum(integral, torch.maximum(cand, -p))
    integral = torch.where(cand > integral, up, down)
    beta = (p + integral + beta_min).clamp(beta_min, beta_max)
    return integral, beta


@SCHEMES.register(PIControllerSchedule)
class PIController(KLScheme):
    """beta, the integral and the last error are float64 device tensors."""

    tensor_fields = ("beta", "integral", "error")
    device_stats = True
    step_values = ("set_point",)
    graph_safe = True

    def __init__(self, spec: Any, ctx: Any):
        super().__init__(spec, ctx)
        self.beta_min, self.beta_max = pi_bounds(spec)
        self.beta = self.scalar(self.beta_min)
        self.integral = self.scalar(0.0)
        self.error = self.scalar(0.0)

    def set_point(self, step: int) -> float:
        s = self.spec
        if s.variant == "image":
            return float(s.target_rate)
        return min(s.set_point_start + s.step_val * (step // s.step_every), s.target_rate)

    def weight(self, step: int):
        return self.beta

    def objective(self, distortion, rate, step):
        loss, logs = super().objective(distortion, rate, step)
        logs.update(
            kl_target=self.set_point(step), controller_error=self.error,
            controller_integral=self.integral,
        )
        return loss, logs

    def update(self, step: int, stats: dict[str, Any]) -> None:
        s = self.spec
        self.error = self.set_point(step) - stat(stats, "rate_term", self.device)
        self.integral, self.beta = pi_step_tensor(
            self.integral, self.error, s.kp, s.ki, self.beta_min, self.beta_max
        )

    def state_dict(self) -> dict[str, Any]:
        return {"beta": float(self.beta), "integral": float(self.integral),
                "error": float(self.error)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.beta = self.scalar(state["beta"])
        self.integral = self.scalar(state["integral"])
        self.error = self.scalar(state["error"])
