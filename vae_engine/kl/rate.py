"""The rate term that enters the objective, before the scheme weights it.

``rate_term`` turns a model output into the scalar R~ (batch mean, sum-mode nats) and the
scalars to log, composing (ENGINE_SPEC section 2, last paragraph):

1. the estimator (registered in ``ESTIMATORS``): per-example analytic KL (``out.kl``, (B, M))
   or the batch-statistics KL ((M,), batch_stats.py);
2. free bits (free_bits.py) -> a clamped rate per latent group (G,);
3. NVAE balancing (balancing.py) -> a detached coefficient per group, applied only while
   ``scheme.in_warmup(step)``; the coefficients come from the unclamped per-group KL.

R~ = sum_g c_g * term_g, with c_g = 1 when balancing is off or outside the warm-up.
Reported metrics never use R~: the trainer always logs the true, unclamped analytic rate.
"""

from __future__ import annotations

from typing import Any

import torch

from vae_engine.kl.base import ESTIMATORS, MODIFIERS, KLScheme
from vae_engine.models.base import ModelOutput, split_groups


def rate_term(
    out: ModelOutput, kl_spec: Any, scheme: KLScheme, step: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Return (R~ scalar tensor, logs). The logs are device tensors: the trainer reads them
    with its other metrics, so this never waits for the device."""
    fb = getattr(kl_spec, "free_bits", None)
    balancing = getattr(kl_spec, "balancing", None)
    estimator = getattr(kl_spec, "estimator", "analytic")
    if fb is None and balancing is None and estimator == "analytic":
        return out.kl.sum(dim=1).mean(), {}  # the plain ELBO: the hot path, no look-ups

    kl, logs = ESTIMATORS.get(estimator, "kl.estimator")(out)  # (B, M) or (M,)
    logs = dict(logs)
    if fb is not None:
        terms, fb_logs = MODIFIERS.get(type(fb).key())(kl, out.group_sizes, fb)  # (G,)
        logs.update(fb_logs)
    else:
        per_group = split_groups(kl, out.group_sizes)  # (B, G) or (G,)
        terms = per_group.mean(0) if per_group.dim() == 2 else per_group
    if balancing is not None:
        coeff = MODIFIERS.get(type(balancing).key())(out, balancing, scheme.in_warmup(step))
        terms = terms * coeff
        logs.update({f"kl_coeff/{g}": c for g, c in enumerate(coeff.detach().unbind())})
    rate = terms.sum()
    logs["rate_term"] = rate.detach()
    return rate, logs
