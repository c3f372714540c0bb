"""Log-likelihood bounds: the IWAE bound (Burda et al. 2015, eq. 8) and bits/dim.

log p_k(x) = logsumexp_i log w_i - log k, log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x),
z_i ~ q(z|x); batched over examples and importance samples, chunked to bound memory.
Whether these numbers bound a normalised likelihood of the data is decided in honesty.py.
"""

from __future__ import annotations

import math

import torch

from vae_engine.likelihoods.base import Likelihood
from vae_engine.models.base import VAEModel

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
