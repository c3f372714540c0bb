"""Sigmoid KL annealing (Bowman et al. 2016, "Generating sentences from a continuous space"):

    w(t) = beta_max / (1 + exp(-k (t - t0)))        (ENGINE_SPEC section 2.3)
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field

from vae_engine.kl.base import SCHEMES, KLScheme
from vae_engine.registry import ComponentConfig


def logistic(x: float) -> float:
    """1 / (1 + exp(-x)) without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def sigmoid_weight(step: int, k: float, t0: float, beta_max: float = 1.0) -> float:
    return beta_max * logistic(k * (step - t0))


class SigmoidSchedule(ComponentConfig):
    """Bowman et al.: w = beta_max / (1 + exp(-k (t - t0)))."""

    paper: ClassVar[str] = (
        "Bowman et al. 2016, Generating Sentences from a Continuous Space "
        "(CoNLL)"
    )
    summary: ClassVar[str] = "KL weight follows a logistic curve in the step, centred at t0."

    kind: Literal["sigmoid"] = "sigmoid"
    beta_max: float = Field(default=1.0, ge=0, description="Asymptotic weight.")
    k: float = Field(default=0.0025, gt=0, le=10, description="Slope of the logistic (per step).")
    t0: int = Field(default=2500, ge=0, description="Step at which the weight is beta_max / 2.")


@SCHEMES.register(SigmoidSchedule)
class Sigmoid(KLScheme):
    def weight(self, step: int) -> float:
        s = self.spec
        return sigmoid_weight(step, s.k, s.t0, s.beta_max)
