"""The forward half of a training step, eager or compiled with ``torch.compile``.

``forward_terms`` runs the model on a batch and reduces it to the two numbers the objective
needs: the distortion (batch mean of the per-example negative log-likelihood) and the true
analytic rate, both nats per example, plus the model output for the rate term and the logs.
With ``train.compile: true`` (or ``vaelab train --compile``) the same function goes through
``torch.compile`` (inductor: fused elementwise kernels around the matmuls, and the backward
of the compiled region compiled as well); the KL scheme, the optimizer and the logging stay
eager. Inductor is told to draw random numbers as eager mode does (``fallback_random``), so
a compiled run draws the same reparameterisation noise as an eager one - its metrics agree
within float rounding and resume stays exact.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vae_engine.likelihoods.base import Likelihood
from vae_engine.models.base import ModelOutput, VAEModel

Forward = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, ModelOutput]]


def forward_terms(
    model: VAEModel, likelihood: Likelihood, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, ModelOutput]:
    out = model(x)
    distortion = likelihood.nll(out.params, x).mean()  # nats/example
    rate = out.kl.sum(1).mean()  # true analytic rate, nats/example
    return distortion, rate, out


def make_forward(model: VAEModel, likelihood: Likelihood, compile: bool = False,
                 bf16: bool = False) -> Forward:
    """The step's forward for this run: eager, or compiled (dynamic shapes off: the last
    partial batch of an epoch compiles once more). ``bf16`` runs it under bfloat16 autocast
    (``train.bf16``: meant for GPUs, unmeasured there; the two terms come back as float32,
    so the objective, the controllers and the logs stay float32)."""
    fn = forward_terms
    if compile:
        import torch._inductor.config as inductor_config

        inductor_config.fallback_random = True  # the eager RNG stream (see the docstring)
        fn = torch.compile(forward_terms, dynamic=False)
    if not bf16:
        return lambda x: fn(model, likelihood, x)

    def autocast_forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, ModelOutput]:
        # no cast cache: each weight is cast once per step anyway, and a cache kept across
        # the steps' autocast regions does not belong in a captured CUDA graph
        with torch.autocast(x.device.type, dtype=torch.bfloat16, cache_enabled=False):
            distortion, rate, out = fn(model, likelihood, x)
        return distortion.float(), rate.float(), out

    return autocast_forward
