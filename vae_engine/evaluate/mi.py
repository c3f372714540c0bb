"""Mutual information I(x; z) and marginal KL over a whole split (ENGINE_SPEC sections 4, 7).

I = E_x E_q[log q(z|x)] - E_z[log q(z)] (He et al. 2019, vae-lagging-encoder ``calc_mi``),
with the aggregate posterior q(z_i) = (1/N) sum_j q(z_i | x_j) over all N examples of the
split, streamed in (row, column) blocks with an online logsumexp, so memory is O(block) and N
is not limited to one batch. Marginal KL KL(q(z) || p(z)) = mean rate - I (Hoffman & Johnson
2016, ELBO surgery).

The estimator cannot exceed log N (each log q(z_i) >= log q(z_i|x_i) - log N): a model whose
true I(x; z) is larger reads as log N, and marginal KL = R - I is then overstated. The
summary reports the ceiling log N, ``saturated`` = I > 0.95 log N, and logs a warning.

Unlike calc_mi, the first term uses the same samples (log q(z_i|x_i)) instead of the analytic
negative entropy: the estimate then never exceeds log N and is exactly 0 for a posterior that
ignores x.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from vae_engine.models.base import LOG_2PI

log = logging.getLogger(__name__)

SATURATION = 0.95  # flag I > SATURATION * log N
# Elements of the (rows, cols, M) deviation tensor built per block (~64 MB of float32).
MI_BLOCK_ELEMENTS = 16_000_000


def mutual_information(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, row_chunk: int = 0,
    col_chunk: int = 0,
) -> float:
    """I(x; z) over N examples; z, mu, logvar (N, M), z_i ~ q(z|x_i)."""
    n, m = mu.shape
    inv_var = torch.exp(-logvar)  # (N, M)
    log_norm = -0.5 * (m * LOG_2PI + logvar.sum(-1))  # (N,)
    col_chunk = col_chunk or min(n, 4096)
    row_chunk = row_chunk or max(1, MI_BLOCK_ELEMENTS // (col_chunk * m))
    gaps = []
    for r0 in range(0, n, row_chunk):
        zc = z[r0 : r0 + row_chunk]  # (r, M)
        acc = torch.full((zc.shape[0],), -math.inf, dtype=z.dtype, device=z.device)  # (r,)
        own = torch.empty(zc.shape[0], dtype=z.dtype, device=z.device)
        for c0 in range(0, n, col_chunk):
            sl = slice(c0, c0 + col_chunk)
            dev = zc.unsqueeze(1) - mu[sl].unsqueeze(0)  # (r, c, M)
            log_dens = -0.5 * (dev.pow(2) * inv_var[sl].unsqueeze(0)).sum(-1) + log_norm[sl]
            acc = torch.logaddexp(acc, torch.logsumexp(log_dens, dim=1))  # (r,)
            rows = torch.arange(zc.shape[0], device=z.device)
            idx = rows + r0 - c0  # column of x_i inside this block
            hit = (idx >= 0) & (idx < log_dens.shape[1])
            own[hit] = log_dens[rows[hit], idx[hit]]  # log q(z_i | x_i)
        gaps.append(own - (acc - math.log(n)))
    return float(torch.cat(gaps).mean())


def mi_summary(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, mean_rate: float,
    prefix: str = "", what: str = "I(x; z)",
) -> dict[str, Any]:
    """The MI, its ceiling log N, the saturation flag and the marginal KL; warns when
    saturated. Keys ``{prefix}mutual_information`` etc."""
    n = int(mu.shape[0])
    mi = mutual_information(z, mu, logvar)
    ceiling = math.log(n)
    saturated = mi > SATURATION * ceiling
    if saturated:
        log.warning(
            "%s = %.3f nats is at its estimator's ceiling log N = %.3f (N = %d examples): the "
            "true value may be larger and marginal KL = R - I is then overstated", what, mi,
            ceiling, n,
        )
    return {
        f"{prefix}mutual_information": mi,
        f"{prefix}mi_n_examples": n,
        f"{prefix}mi_upper_bound": ceiling,
        f"{prefix}mi_saturated": bool(saturated),
        f"{prefix}marginal_kl": mean_rate - mi,
        f"{prefix}mi_rate": mean_rate,  # mean rate over the same N examples
    }
