"""Test-split evaluation: the rate-distortion summary of ENGINE_SPEC section 4.

- ELBO, rate R and distortion D in nats per example, and bits/dim = nats / (N ln 2).
- IWAE bound (Burda et al. 2015, eq. 8): log p_k(x) = logsumexp_i log w_i - log k, batched over
  examples and importance samples, chunked to bound memory.
- Active units (Burda et al. 2015, section 5.2): A_u = Cov_x(E_q[z_u]) > threshold.
- Mutual information I(x; z) (He et al. 2019, vae-lagging-encoder ``calc_mi``), bounded by
  log B for the B examples it is computed over.
- Marginal KL KL(q(z) || p(z)) = mean rate - I (Hoffman & Johnson 2016, ELBO surgery).
- Per-unit KL and, for multi-group models, per-group KL.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from vae_engine.likelihoods.base import Likelihood
from vae_engine.models.base import LOG_2PI, VAEModel

LN2 = math.log(2.0)
# Decoded elements (samples x data dims) per IWAE chunk when the spec leaves it at 0:
# ~16 MB of float32 decoder output per chunk.
AUTO_CHUNK_ELEMENTS = 4_000_000


def log_mean_exp(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log(mean(exp(x))) along dim, computed stably."""
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


def bits_per_dim(nats: float, n_dims: int) -> float:
    return nats / (n_dims * LN2)


@torch.no_grad()
def iwae_bound(
    model: VAEModel, likelihood: Likelihood, x: torch.Tensor, k: int, chunk: int = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """IWAE estimate of log p(x) per example, (B,), with k importance samples.

    ``chunk`` bounds the number of decoded samples per forward pass (0 = automatic).
    """
    n_dims = x[0].numel()
    budget = chunk or max(1, AUTO_CHUNK_ELEMENTS // n_dims)
    k_chunk = min(k, budget)
    per_pass = max(1, budget // k_chunk)  # examples per pass
    out = []
    for xb in x.split(per_pass):
        parts = [
            model.log_weights(xb, min(k_chunk, k - done), likelihood.nll, generator)
            for done in range(0, k, k_chunk)
        ]
        out.append(log_mean_exp(torch.cat(parts, 0), 0))  # (b,)
    return torch.cat(out)


# Elements of the (rows, B, M) deviation tensor built per chunk in mutual_information (~64 MB).
MI_CHUNK_ELEMENTS = 16_000_000


def mutual_information(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, row_chunk: int = 0
) -> float:
    """I(x; z) on one batch, after He et al. 2019 ``calc_mi``: E[log q(z|x)] - E[log q(z)].

    z, mu, logvar: (B, M); z_i ~ q(z|x_i). log q(z_i) = logsumexp_j log q(z_i|x_j) - log B.
    Unlike calc_mi, the first term uses the same samples (log q(z_i|x_i)) instead of the
    analytic negative entropy: the estimate then never exceeds log B (the analytic form can,
    by Monte-Carlo noise, when I is near its bound) and is exactly 0 for a posterior that
    ignores x.
    """
    b, m = mu.shape
    inv_var = torch.exp(-logvar)  # (B, M)
    log_norm = -0.5 * (m * LOG_2PI + logvar.sum(-1))  # (B,)
    row_chunk = row_chunk or max(1, MI_CHUNK_ELEMENTS // (b * m))
    gaps = []
    for start in range(0, b, row_chunk):
        zc = z[start : start + row_chunk]  # (b_c, M)
        dev = zc.unsqueeze(1) - mu.unsqueeze(0)  # (b_c, B, M)
        log_dens = -0.5 * (dev.pow(2) * inv_var.unsqueeze(0)).sum(-1) + log_norm  # (b_c, B)
        rows = torch.arange(zc.shape[0], device=z.device)
        own = log_dens[rows, rows + start]  # log q(z_i | x_i), (b_c,)
        gaps.append(own - (torch.logsumexp(log_dens, dim=1) - math.log(b)))
    return float(torch.cat(gaps).mean())


@torch.no_grad()
def evaluate(
    model: VAEModel, likelihood: Likelihood, x: torch.Tensor, *, iwae_k: int = 0,
    iwae_chunk: int = 0, au_threshold: float = 0.01, batch_size: int = 500,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """The rate-distortion summary on x (N, C, H, W). iwae_k = 0 skips the IWAE bound."""
    was_training = model.training, likelihood.training
    model.eval()
    likelihood.eval()
    try:
        dist, rate, kl, mus, logvars, zs = [], [], [], [], [], []
        group_kl = []
        group_sizes = None
        for xb in x.split(batch_size):
            out = model(xb, generator)
            dist.append(likelihood.nll(out.params, xb))  # (b,)
            rate.append(out.kl.sum(1))  # (b,)
            kl.append(out.kl)
            mus.append(out.mu)
            logvars.append(out.logvar)
            zs.append(out.z)
            group_kl.append(out.kl_groups())
            group_sizes = out.group_sizes
        d, r = torch.cat(dist), torch.cat(rate)
        mu, logvar, z = torch.cat(mus), torch.cat(logvars), torch.cat(zs)
        n_dims = x[0].numel()
        elbo = float(-(d + r).mean())
        au_var = mu.var(dim=0, correction=1) if mu.shape[0] > 1 else torch.zeros_like(mu[0])
        mi = None
        if group_sizes is None:
            mi = mutual_information(z, mu, logvar)
        summary: dict[str, Any] = {
            "n_examples": int(x.shape[0]),
            "elbo": elbo,
            "rate": float(r.mean()),
            "distortion": float(d.mean()),
            "bits_per_dim": bits_per_dim(-elbo, n_dims),
            "active_units": int((au_var > au_threshold).sum()),
            "active_units_variance": au_var.tolist(),
            "mutual_information": mi,
            "mi_batch_size": int(x.shape[0]),
            "mi_upper_bound": math.log(x.shape[0]),
            "marginal_kl": None if mi is None else float(r.mean()) - mi,
            "kl_per_unit": torch.cat(kl).mean(0).tolist(),
        }
        if group_sizes is not None:
            # A lower group's q(z_g | x, z_<g) is conditioned on each example's own z_<g, so
            # log q(z_i | x_j) is not available from the flattened (mu, logvar): the whole-model
            # I(x; z) and marginal KL are left out (None). The top group's q(z_1 | x) depends on
            # x alone and its prior is N(0, I), so its MI and marginal KL are exact estimates.
            g_kl = torch.cat(group_kl)  # (N, G)
            top = group_sizes[0]
            mi_top = mutual_information(z[:, :top], mu[:, :top], logvar[:, :top])
            summary["kl_per_group"] = g_kl.mean(0).tolist()
            summary["mutual_information_top_group"] = mi_top
            summary["marginal_kl_top_group"] = float(g_kl[:, 0].mean()) - mi_top
        if iwae_k > 0:
            ll = iwae_bound(model, likelihood, x, iwae_k, iwae_chunk, generator)
            summary["iwae"] = float(ll.mean())
            summary["iwae_k"] = int(iwae_k)
            summary["iwae_bits_per_dim"] = bits_per_dim(-float(ll.mean()), n_dims)
        return summary
    finally:
        model.train(was_training[0])
        likelihood.train(was_training[1])
