"""Cyclical KL annealing (Fu et al. 2019, NAACL), closed form (ENGINE_SPEC section 2.4):

    P = T / n_cycle,  tau = (t mod P) / P,  r = tau / R if tau <= R else 1
    w = start + (stop - start) * s(r)
    s(r) = r (linear) | 1 / (1 + exp(-(12 r - 6))) for tau <= R, 1 after (sigmoid)
         | 0.5 - 0.5 cos(pi r) (cosine)

With the defaults start = 0, stop = 1 this is exactly the spec's formula for every shape.
Differences from the reference code (haofuml/cyclical_annealing ``frange_cycle_*``):
- it fills a table by stepping v from start to stop and, with R = 1, the last value of
  each cycle is overwritten by the next cycle's start, so ``stop`` is never reached; the
  closed form reaches it at the end of each ramp;
- for the sigmoid and cosine shapes it applies the shape to v in [start, stop] rather than
  rescaling s(r) to [start, stop]; the two agree for start = 0, stop = 1.
The sigmoid shape follows the reference's endpoint: ``frange_cycle_sigmoid`` writes
sigma(12 v - 6) for v up to and including stop, so at tau = R (r = 1) the weight is
sigma(6) = 0.997527, not 1; it is 1 only after the ramp (tau > R). The linear and cosine shapes
reach 1 at tau = R, as in the reference. (Before issue 12 the sigmoid returned 1.0 at tau = R.)
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field

from vae_engine.errors import SpecError
from vae_engine.kl.base import SCHEMES, KLScheme
from vae_engine.kl.sigmoid import logistic
from vae_engine.registry import ComponentConfig


def _tau(step: int, total_steps: int, n_cycle: int) -> float:
    """Position within the current period, in [0, 1)."""
    period = total_steps / n_cycle
    return math.fmod(step, period) / period


def cycle_position(step: int, total_steps: int, n_cycle: int, ratio: float) -> tuple[float, bool]:
    """(r, ramping): r in [0, 1] the position within the ramp; ramping while tau < R."""
    tau = _tau(step, total_steps, n_cycle)
    if tau <= ratio:
        return tau / ratio, tau < ratio
    return 1.0, False


def cyclical_weight(
    step: int, total_steps: int, n_cycle: int = 4, ratio: float = 0.5, shape: str = "linear",
    start: float = 0.0, stop: float = 1.0,
) -> float:
    r, ramping = cycle_position(step, total_steps, n_cycle, ratio)
    if shape == "linear":
        s = r
    elif shape == "sigmoid":
        s = logistic(12.0 * r - 6.0) if _tau(step, total_steps, n_cycle) <= ratio else 1.0
    elif shape == "cosine":
        s = 0.5 - 0.5 * math.cos(math.pi * r)
    else:
        raise ValueError(f"unknown cyclical shape {shape!r}")
    return start + (stop - start) * s


class CyclicalSchedule(ComponentConfig):
    """Fu et al.: n_cycle ramps from start to stop, each over the first `ratio` of a period."""

    paper: ClassVar[str] = (
        "Fu et al. 2019, Cyclical Annealing Schedule: A Simple Approach to Mitigating KL "
        "Vanishing (NAACL)"
    )
    summary: ClassVar[str] = (
        "KL weight ramps from start to stop n_cycle times (linear, sigmoid or "
        "cosine; the sigmoid ends its ramp at sigma(6) = 0.997527, as the reference code)."
    )
    warmup: ClassVar[bool] = True

    kind: Literal["cyclical"] = "cyclical"
    n_cycle: int = Field(default=4, ge=1, le=100_000, description="Number of cycles in training.")
    ratio: float = Field(
        default=0.5, gt=0, le=1, description="Fraction R of each period spent ramping."
    )
    shape: Literal["linear", "sigmoid", "cosine"] = Field(
        default="linear", description="Shape of the ramp."
    )
    start: float = Field(default=0.0, ge=0, description="Weight at the start of each cycle.")
    stop: float = Field(default=1.0, ge=0, description="Weight at the end of each ramp.")


@SCHEMES.register(CyclicalSchedule)
class Cyclical(KLScheme):
    def __init__(self, spec, ctx):
        super().__init__(spec, ctx)
        if spec.n_cycle > ctx.total_steps:  # a cycle shorter than one step never ramps
            raise SpecError([{
                "field": "kl.schedule.n_cycle",
                "message": f"{spec.n_cycle} cycles do not fit in {ctx.total_steps} training "
                           "steps; use at most one cycle per step (far fewer in practice)",
            }])

    def weight(self, step: int) -> float:
        s = self.spec
        return cyclical_weight(
            step, self.ctx.total_steps, s.n_cycle, s.ratio, s.shape, s.start, s.stop
        )

    def in_warmup(self, step: int) -> bool:
        """The ramp of each cycle counts as a warm-up (for NVAE balancing)."""
        s = self.spec
        r, ramping = cycle_position(step, self.ctx.total_steps, s.n_cycle, s.ratio)
        return ramping and r < 1.0
