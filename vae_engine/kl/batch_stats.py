"""Batch-statistics KL (seed 001; ENGINE_SPEC section 2.11).

Per latent dim j, over the batch of sampled z:
    m_j = mean_b z_bj,   v_j = var_b z_bj (biased),   KL_j = 0.5 (v_j + m_j^2 - 1 - log(v_j + eps))
i.e. the KL from a Gaussian moment-matched to the batch of codes to N(0, 1). It regularises
the aggregate posterior rather than each q(z|x); it is an estimate, not a bound, and it is
never reported as the rate.
"""

from __future__ import annotations

import torch

EPS = 1e-8  # keeps log finite when a dim has collapsed to a constant over the batch


def batch_stats_kl(z: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """z (B, M) -> (M,) KL of N(mean_b z, var_b z) to N(0, 1) per dim."""
    m = z.mean(0)  # (M,)
    v = z.var(0, unbiased=False)  # (M,)
    return 0.5 * (v + m.pow(2) - 1.0 - torch.log(v + eps))
