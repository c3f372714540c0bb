"""Free bits (Kingma et al. 2016, "Improved variational inference with inverse autoregressive
flow", eq. 15; ENGINE_SPEC section 2.8): the rate term becomes

    sum_k max(lambda, mean_b KL_bk)        (average = "batch": the IAF form)
    mean_b sum_k max(lambda, KL_bk)        (average = "per_sample")

where k ranges over latent units (group = "per_dim") or over latent groups, each KL summed
over the group's units (group = "per_group"). Below lambda the term has no gradient, so the
encoder is free to spend lambda nats per unit/group. This only shapes the training objective;
the reported rate is always the unclamped analytic one.
"""

from __future__ import annotations

import torch

from vae_engine.models.base import split_groups


def free_bits_terms(
    kl: torch.Tensor, group_sizes: tuple[int, ...] | None, lam: float, group: str, average: str
) -> tuple[torch.Tensor, float]:
    """Clamped rate per latent group and the fraction of clamped entries.

    kl: (B, M) per-example, per-unit KL, or (M,) already a batch-level KL (batch statistics).
    Returns ((G,) tensor whose sum is the free-bits rate term, fraction clamped).
    """
    if kl.dim() == 1:
        if average != "batch":
            raise ValueError("free bits 'per_sample' needs a per-example KL")
        kl = kl.unsqueeze(0)  # (1, M): one "example", the batch
    if group == "per_dim":
        units = kl  # (B, M)
    elif group == "per_group":
        units = split_groups(kl, group_sizes)  # (B, G)
    else:
        raise ValueError(f"unknown free-bits group {group!r}")
    if average == "batch":
        mean = units.mean(0)  # (K,)
        clamped, frac = mean.clamp_min(lam), (mean < lam).float().mean()
    elif average == "per_sample":
        clamped, frac = units.clamp_min(lam).mean(0), (units < lam).float().mean()
    else:
        raise ValueError(f"unknown free-bits average {average!r}")
    per_group = split_groups(clamped, group_sizes) if group == "per_dim" else clamped
    return per_group, float(frac)
