"""Sigmoid KL annealing (Bowman et al. 2016, "Generating sentences from a continuous space"):

    w(t) = beta_max / (1 + exp(-k (t - t0)))        (ENGINE_SPEC section 2.3)
"""

from __future__ import annotations

import math

from vae_engine.kl.base import SCHEMES, KLScheme


def logistic(x: float) -> float:
    """1 / (1 + exp(-x)) without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def sigmoid_weight(step: int, k: float, t0: float, beta_max: float = 1.0) -> float:
    return beta_max * logistic(k * (step - t0))


@SCHEMES.register("sigmoid")
class Sigmoid(KLScheme):
    summary = "KL weight follows a logistic curve in the step, centred at t0."
    paper = "Bowman et al. 2016, Generating Sentences from a Continuous Space (CoNLL)"

    def weight(self, step: int) -> float:
        s = self.spec
        return sigmoid_weight(step, s.k, s.t0, s.beta_max)
