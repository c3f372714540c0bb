"""The rate term that enters the objective, before the scheme weights it.

``rate_term`` turns a model output into the scalar R~ (batch mean, sum-mode nats) and the
scalars to log, composing (ENGINE_SPEC section 2, last paragraph):

1. the estimator: per-example analytic KL (``out.kl``, (B, M)) or the batch-statistics KL
   ((M,), batch_stats.py);
2. free bits (free_bits.py) -> a clamped rate per latent group (G,);
3. NVAE balancing (balancing.py) -> a detached coefficient per group, applied only while
   ``scheme.in_warmup(step)``; the coefficients come from the unclamped per-group KL.

R~ = sum_g c_g * term_g, with c_g = 1 when balancing is off or outside the warm-up.
Reported metrics never use R~: the trainer always logs the true, unclamped analytic rate.
"""

from __future__ import annotations

from typing import Any

import torch

from vae_engine.kl.balancing import alpha_from_scales, balancing_coefficients
from vae_engine.kl.base import KLScheme
from vae_engine.kl.batch_stats import batch_stats_kl
from vae_engine.kl.free_bits import free_bits_terms
from vae_engine.models.base import ModelOutput, split_groups


def rate_term(
    out: ModelOutput, kl_spec: Any, scheme: KLScheme, step: int
) -> tuple[torch.Tensor, dict[str, float]]:
    """Return (R~ scalar tensor, logs)."""
    fb = getattr(kl_spec, "free_bits", None)
    balancing = getattr(kl_spec, "balancing", None)
    estimator = getattr(kl_spec, "estimator", "analytic")
    if fb is None and balancing is None and estimator == "analytic":
        return out.kl.sum(dim=1).mean(), {}

    logs: dict[str, float] = {}
    if estimator == "batch_stats":
        kl = batch_stats_kl(out.z)  # (M,)
        logs["kl_batch_stats"] = float(kl.detach().sum())
    elif estimator == "analytic":
        kl = out.kl  # (B, M)
    else:
        raise ValueError(f"unknown kl.estimator {estimator!r}")

    if fb is not None:
        terms, frac = free_bits_terms(kl, out.group_sizes, fb.lambda_, fb.group, fb.average)
        logs["free_bits_clamped"] = frac
    else:
        per_group = split_groups(kl, out.group_sizes)  # (B, G) or (G,)
        terms = per_group.mean(0) if per_group.dim() == 2 else per_group

    if balancing is not None:
        if out.group_sizes is None or out.group_scales is None:
            raise ValueError("kl.balancing needs a model with latent groups and scales")
        coeff = _balancing(out, balancing.alpha, scheme.in_warmup(step))
        terms = terms * coeff
        logs.update({f"kl_coeff/{g}": float(c) for g, c in enumerate(coeff.tolist())})

    rate = terms.sum()
    logs["rate_term"] = float(rate.detach())
    return rate, logs


def _balancing(out: ModelOutput, fun: str, active: bool) -> torch.Tensor:
    """(G,) detached coefficients: NVAE's during warm-up, ones after."""
    kl_groups = out.kl_groups()  # (B, G)
    if not active:
        return torch.ones(kl_groups.shape[1], device=kl_groups.device, dtype=kl_groups.dtype)
    alpha = torch.tensor(
        alpha_from_scales(out.group_scales, fun), device=kl_groups.device, dtype=kl_groups.dtype
    )
    return balancing_coefficients(kl_groups, alpha)
