"""GECO: a constraint on the distortion (Rezende & Viola 2018, "Taming VAEs", Alg. 1;
ENGINE_SPEC section 2.9).

Both forms smooth the batch distortion D and compare it with the tolerance kappa
(nats per example); the multiplier is updated once per step, after the loss.

- ``multiplier`` (Taming VAEs): c = D - kappa, c_ma <- alpha c_ma + (1 - alpha) c
  (initialised to the first c), lambda <- clamp(lambda * exp(lr * c_ma)); the loss is
  R + lambda D, i.e. a KL weight w = 1 / lambda relative to D, reported as beta.
- ``genesis`` (Engelcke et al. 2020, GENESIS ``utils/geco.py``): err_ema <- (1 - alpha) D
  + alpha err_ema, constraint = kappa - err_ema, beta <- clamp(beta * exp(s * lr *
  constraint)) with s = speedup while the constraint holds (constraint > 0), else s = 1;
  the loss is D + beta R.

``geco_constraint`` is logged as the smoothed D - kappa in both forms (> 0: violated).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import Field

from vae_engine.kl.base import SCHEMES, KLScheme, stat
from vae_engine.registry import ComponentConfig

_EXP_MAX = 700.0


def _clamp(v: float, lo: float, hi: float) -> float:
    return min(max(v, lo), hi)


def geco_multiplier_step(
    lam: float, c_ma: float | None, distortion: float, kappa: float, alpha: float, lr: float,
    lo: float = 1e-10, hi: float = 1e10,
) -> tuple[float, float]:
    """(new lambda, new c_ma) of the Taming-VAEs multiplier form."""
    c = distortion - kappa
    c_ma = c if c_ma is None else alpha * c_ma + (1.0 - alpha) * c
    lam = _clamp(lam * math.exp(min(lr * c_ma, _EXP_MAX)), lo, hi)
    return lam, c_ma


def geco_genesis_step(
    beta: float, err_ema: float | None, distortion: float, kappa: float, alpha: float,
    lr: float, speedup: float, lo: float = 1e-10, hi: float = 1e10,
) -> tuple[float, float]:
    """(new beta, new err_ema) of the GENESIS beta form."""
    err_ema = distortion if err_ema is None else (1.0 - alpha) * distortion + alpha * err_ema
    constraint = kappa - err_ema
    rate = speedup * lr if constraint > 0 else lr
    beta = _clamp(beta * math.exp(min(rate * constraint, _EXP_MAX)), lo, hi)
    return beta, err_ema


class GecoSchedule(ComponentConfig):
    """Rezende & Viola: constrain the distortion to kappa with a Lagrange multiplier."""

    paper: ClassVar[str] = (
        "Rezende & Viola 2018, Taming VAEs (arXiv:1810.00597); GENESIS (ICLR 2020) "
        "form"
    )
    summary: ClassVar[str] = "Lagrange multiplier holding the distortion at a tolerance kappa."
    stateful: ClassVar[bool] = True
    examples: ClassVar[tuple[dict[str, Any], ...]] = (
        {"kappa": 80.0, "lr": 0.01},
        {"kappa": 80.0, "lr": 0.01, "form": "genesis"},
    )

    kind: Literal["geco"] = "geco"
    form: Literal["multiplier", "genesis"] = Field(
        default="multiplier",
        description="multiplier: loss R + lambda D (Taming VAEs); genesis: loss D + beta R "
        "with the faster update while the constraint holds (GENESIS).",
    )
    kappa: float = Field(gt=0, description="Tolerated distortion kappa (nats/example).")
    alpha: float = Field(
        default=0.99, ge=0, lt=1, description="Moving-average factor of the constraint."
    )
    lr: float = Field(default=1e-3, gt=0, le=10, description="Multiplier step size lr_lambda.")
    init: float = Field(default=1.0, gt=0, description="Initial lambda (multiplier) or beta.")
    clamp_min: float = Field(default=1e-10, gt=0, description="Lower clamp of lambda or beta.")
    clamp_max: float = Field(default=1e10, gt=0, description="Upper clamp of lambda or beta.")
    speedup: float = Field(
        default=10.0, ge=1, description="genesis: rate multiplier while the constraint holds."
    )

    def problems(self, spec: Any) -> list[str]:
        if self.clamp_min >= self.clamp_max:
            return ["kl.schedule.clamp_min: must be below kl.schedule.clamp_max"]
        return []


@SCHEMES.register(GecoSchedule)
class Geco(KLScheme):
    """lambda/beta and the moving average are float64 device tensors; ``started`` (a bool
    tensor) says whether the average has its first value (the None of the float rules)."""

    tensor_fields = ("value", "_ema", "started")
    device_stats = True
    graph_safe = True

    def __init__(self, spec: Any, ctx: Any):
        import torch

        super().__init__(spec, ctx)
        self.value = self.scalar(spec.init)  # lambda (multiplier) or beta (genesis)
        self._ema = self.scalar(0.0)  # c_ma (multiplier) or err_ema (genesis)
        self.started = torch.tensor(False)

    @property
    def ema(self) -> float | None:
        """The moving average as a float, None before the first update (reads the device)."""
        return float(self._ema) if bool(self.started) else None

    def constraint(self):
        """Smoothed D - kappa (0 before the first update), a device tensor."""
        import torch

        c = self._ema if self.spec.form == "multiplier" else self._ema - self.spec.kappa
        return torch.where(self.started, c, torch.zeros_like(c))

    def weight(self, step: int):
        return 1.0 / self.value if self.spec.form == "multiplier" else self.value

    def objective(self, distortion, rate, step):
        logs = {"beta": self.weight(step), "geco_constraint": self.constraint()}
        if self.spec.form == "multiplier":
            logs["geco_lambda"] = self.value
            return rate + self.value.to(distortion.dtype) * distortion, logs
        return distortion + self.value.to(rate.dtype) * rate, logs

    def update(self, step: int, stats: dict[str, Any]) -> None:
        """geco_multiplier_step / geco_genesis_step on device tensors."""
        import torch

        s = self.spec
        d = stat(stats, "distortion", self.device)
        if s.form == "multiplier":
            c = d - s.kappa
            ema = torch.where(self.started, s.alpha * self._ema + (1.0 - s.alpha) * c, c)
            factor = torch.exp((s.lr * ema).clamp_max(_EXP_MAX))
        else:
            ema = torch.where(self.started, (1.0 - s.alpha) * d + s.alpha * self._ema, d)
            constraint = s.kappa - ema
            lr = torch.where(constraint > 0, s.speedup * s.lr, s.lr)
            factor = torch.exp((lr * constraint).clamp_max(_EXP_MAX))
        self.value = (self.value * factor).clamp(s.clamp_min, s.clamp_max)
        self._ema = ema
        self.started = torch.ones_like(self.started)

    def state_dict(self) -> dict[str, Any]:
        return {"value": float(self.value), "ema": self.ema}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        import torch

        self.value = self.scalar(state["value"])
        started = state["ema"] is not None
        self._ema = self.scalar(state["ema"] if started else 0.0)
        self.started = torch.tensor(started, device=self.device)
