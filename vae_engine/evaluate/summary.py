"""Test-split evaluation: the rate-distortion summary of ENGINE_SPEC section 4.

- ELBO, rate R and distortion D in nats per example, and bits/dim = nats / (N ln 2) (plus
  log 256 per dim for dequantised data: honesty.py).
- IWAE bound (Burda et al. 2015, eq. 8), optionally on a prefix of the examples (the cheap
  intermediate evaluations use a small k on a subset): bounds.py.
- Active units (Burda et al. 2015, section 5.2): A_u = Cov_x(E_q[z_u]) > threshold.
- Mutual information I(x; z) and marginal KL over a whole split, with the ceiling log N and
  a saturation flag (mi.py).
- Per-unit KL and, for multi-group models, per-group KL.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from vae_engine.evaluate.bounds import bits_per_dim, iwae_bound
from vae_engine.evaluate.mi import mi_summary
from vae_engine.likelihoods.base import Likelihood
from vae_engine.models.base import VAEModel


@torch.no_grad()
def _encode_all(model: VAEModel, x: torch.Tensor, batch_size: int,
                generator: torch.Generator | None) -> tuple[torch.Tensor, ...]:
    """(z, mu, logvar, rate) over x, each (N, M) / (N,), one batch at a time."""
    zs, mus, logvars, rates = [], [], [], []
    for xb in x.split(batch_size):
        out = model(xb, generator)
        zs.append(out.z)
        mus.append(out.mu)
        logvars.append(out.logvar)
        rates.append(out.kl.sum(1))
    return torch.cat(zs), torch.cat(mus), torch.cat(logvars), torch.cat(rates)


@torch.no_grad()
def evaluate(
    model: VAEModel, likelihood: Likelihood, x: torch.Tensor, *, iwae_k: int = 0,
    iwae_chunk: int = 0, au_threshold: float = 0.01, batch_size: int = 500,
    generator: torch.Generator | None = None, iwae_examples: int | None = None,
    x_mi: torch.Tensor | None = None, nats_offset: float = 0.0,
) -> dict[str, Any]:
    """The rate-distortion summary on x (N, C, H, W). iwae_k = 0 skips the IWAE bound;
    ``iwae_examples`` limits it to x[:iwae_examples]. MI and marginal KL are estimated over
    ``x_mi`` (default x: pass the whole split). ``nats_offset`` (N log 256 for dequantised
    data) is added to the negative bounds for bits/dim only."""
    was_training = model.training, likelihood.training
    model.eval()
    likelihood.eval()
    try:
        dist, rate, kl, mus = [], [], [], []
        group_kl = []
        group_sizes = None
        for xb in x.split(batch_size):
            out = model(xb, generator)
            dist.append(likelihood.nll(out.params, xb))  # (b,)
            rate.append(out.kl.sum(1))  # (b,)
            kl.append(out.kl)
            mus.append(out.mu)
            group_kl.append(out.kl_groups())
            group_sizes = out.group_sizes
        d, r = torch.cat(dist), torch.cat(rate)
        mu = torch.cat(mus)
        n_dims = x[0].numel()
        elbo = float(-(d + r).mean())
        au_var = mu.var(dim=0, correction=1) if mu.shape[0] > 1 else torch.zeros_like(mu[0])
        summary: dict[str, Any] = {
            "n_examples": int(x.shape[0]),
            "elbo": elbo,
            "rate": float(r.mean()),
            "distortion": float(d.mean()),
            "bits_per_dim": bits_per_dim(-elbo + nats_offset, n_dims),
            "active_units": int((au_var > au_threshold).sum()),
            "active_units_variance": au_var.tolist(),
            "kl_per_unit": torch.cat(kl).mean(0).tolist(),
        }
        xm = x if x_mi is None else x_mi
        z_all, mu_all, logvar_all, rate_all = _encode_all(model, xm, batch_size, generator)
        if group_sizes is None:
            summary.update(mi_summary(z_all, mu_all, logvar_all, float(rate_all.mean())))
        else:
            # A lower group's q(z_g | x, z_<g) is conditioned on each example's own z_<g, so
            # log q(z_i | x_j) is not available from the flattened (mu, logvar): the whole-model
            # I(x; z) and marginal KL are left out (None). The top group's q(z_1 | x) depends on
            # x alone and its prior is N(0, I), so its MI and marginal KL are exact estimates.
            top = group_sizes[0]
            g_kl = torch.cat(group_kl)  # (N, G)
            top_rate = float(0.5 * (mu_all[:, :top].pow(2) + logvar_all[:, :top].exp() - 1
                                    - logvar_all[:, :top]).sum(1).mean())
            summary.update({"mutual_information": None, "marginal_kl": None,
                            "mi_upper_bound": math.log(xm.shape[0]), "mi_saturated": None})
            summary.update(mi_summary(z_all[:, :top], mu_all[:, :top], logvar_all[:, :top],
                                      top_rate, prefix="top_group_", what="I(x; z_top)"))
            summary["kl_per_group"] = g_kl.mean(0).tolist()
            # the names of the earlier summaries
            summary["mutual_information_top_group"] = summary["top_group_mutual_information"]
            summary["marginal_kl_top_group"] = summary["top_group_marginal_kl"]
        summary["mi_batch_size"] = int(xm.shape[0])  # N of the whole split (older name)
        if iwae_k > 0:
            xi = x if iwae_examples is None else x[:iwae_examples]
            ll = iwae_bound(model, likelihood, xi, iwae_k, iwae_chunk, generator)
            summary["iwae"] = float(ll.mean())
            summary["iwae_k"] = int(iwae_k)
            summary["iwae_n_examples"] = int(xi.shape[0])
            summary["iwae_bits_per_dim"] = bits_per_dim(-float(ll.mean()) + nats_offset, n_dims)
        return summary
    finally:
        model.train(was_training[0])
        likelihood.train(was_training[1])
