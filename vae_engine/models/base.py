"""The VAE model interface and the flat diagonal-Gaussian base class (torch).

A model maps x (B, C, H, W) to a :class:`ModelOutput`: decoder params (fed to a Likelihood),
the latent sample and, per latent unit, the analytic KL to the prior. The flat base class
(one Gaussian latent vector, standard-normal prior) implements the IWAE log-weights by
encoding once and decoding K samples; hierarchical models override what differs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from vae_engine.models.config import ARCHITECTURES  # noqa: F401  (re-export)

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl_std_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-unit KL(N(mu, exp(logvar)) || N(0, 1)) = 0.5 (mu^2 + sigma^2 - 1 - log sigma^2)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar))."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def std_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (LOG_2PI + z.pow(2))


def split_groups(per_unit: torch.Tensor, group_sizes: tuple[int, ...] | None) -> torch.Tensor:
    """Sum the last dim (M units) within each latent group: (..., M) -> (..., G)."""
    if group_sizes is None:
        return per_unit.sum(-1, keepdim=True)
    return torch.stack([c.sum(-1) for c in per_unit.split(list(group_sizes), -1)], -1)


@dataclass
class ModelOutput:
    params: torch.Tensor  # (B, P*C, H, W) decoder output
    z: torch.Tensor  # (B, M) the latent sample (all groups flattened)
    mu: torch.Tensor  # (B, M) posterior means
    logvar: torch.Tensor  # (B, M) posterior log-variances
    kl: torch.Tensor  # (B, M) analytic KL per latent unit (to the (conditional) prior)
    group_sizes: tuple[int, ...] | None = None  # units per latent group; None = one group
    group_scales: tuple[int, ...] | None = None  # spatial scale index i of each group (NVAE)

    def kl_groups(self) -> torch.Tensor:
        """(B, G) KL summed within each group."""
        return split_groups(self.kl, self.group_sizes)


class VAEModel(nn.Module):
    """Flat VAE: q(z|x) = N(mu(x), diag exp(logvar(x))), p(z) = N(0, I)."""

    latent_dim: int

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> mu, logvar, each (B, M)."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, M) -> decoder params (B, P*C, H, W)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> ModelOutput:
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        return ModelOutput(self.decode(z), z, mu, logvar, gaussian_kl_std_normal(mu, logvar))

    def sample_prior(
        self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Decoder params for n prior samples."""
        device = next(self.parameters()).device
        z = temperature * torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.decode(z)

    def log_weights(
        self, x: torch.Tensor, k: int, nll_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Importance log-weights log p(x|z_i) + log p(z_i) - log q(z_i|x), shape (k, B).

        Encodes x once and decodes all k*B samples in one batch (the caller chunks k).
        """
        mu, logvar = self.encode(x)  # (B, M)
        b, m = mu.shape
        eps = torch.randn((k, b, m), generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps  # (k, B, M)
        log_q = gaussian_log_prob(z, mu, logvar).sum(-1)  # (k, B)
        log_p = std_normal_log_prob(z).sum(-1)  # (k, B)
        params = self.decode(z.reshape(k * b, m))
        xk = x.unsqueeze(0).expand(k, *x.shape).reshape(k * b, *x.shape[1:])
        log_px = -nll_fn(params, xk).reshape(k, b)
        return log_px + log_p - log_q

