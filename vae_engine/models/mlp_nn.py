"""Fully connected VAE (Kingma & Welling 2014, appendix C; pythae's default MLP is 784-512-z).

Encoder: flatten -> hidden layers -> (mu, logvar). Decoder: z -> reversed hidden layers ->
P*C*H*W outputs reshaped to (B, P*C, H, W).

This module is the network (torch); its config, ``build()`` and registration are in
mlp.py, which imports it lazily so that specs validate without torch (see models/config.py).
"""

from __future__ import annotations

import torch
from torch import nn

from vae_engine.models.base import VAEModel
from vae_engine.models.layers import activation


def _stack(sizes: list[int], act: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), activation(act)]
    return nn.Sequential(*layers)


class MlpVAE(VAEModel):
    def __init__(
        self, data_shape: tuple[int, int, int], out_channels: int, latent_dim: int,
        hidden: list[int], act: str = "relu",
    ):
        super().__init__()
        c, h, w = data_shape
        self.latent_dim = latent_dim
        self.out_shape = (out_channels, h, w)
        n_in = c * h * w
        self.encoder = _stack([n_in, *hidden], act)
        last = hidden[-1] if hidden else n_in
        self.to_mu = nn.Linear(last, latent_dim)
        self.to_logvar = nn.Linear(last, latent_dim)
        rev = list(reversed(hidden))
        self.decoder = _stack([latent_dim, *rev], act)
        self.to_params = nn.Linear(rev[-1] if rev else latent_dim, out_channels * h * w)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hid = self.encoder(x.flatten(1))  # (B, H_last)
        return self.to_mu(hid), self.to_logvar(hid)  # (B, M) each

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.to_params(self.decoder(z))  # (B, P*C*H*W)
        return out.view(z.shape[0], *self.out_shape)
