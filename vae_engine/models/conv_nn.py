"""Convolutional VAE in the style of Burgess et al. 2018 / disentangling-vae.

Encoder: len(channels) conv layers (kernel 4, stride 2, padding 1), each halving H and W,
then a hidden linear layer and (mu, logvar). Decoder mirrors it with transposed convolutions.
H and W must be divisible by 2**len(channels): 8x8 takes up to 3 layers, 28x28 up to 2,
32x32 up to 5 and 64x64 up to 6 (the spec allows at most 4).

This module is the network (torch); its config, ``build()`` and registration are in
conv.py, which imports it lazily so that specs validate without torch (see models/config.py).
"""

from __future__ import annotations

import torch
from torch import nn

from vae_engine.errors import SpecError
from vae_engine.models.base import VAEModel
from vae_engine.models.layers import activation


class ConvVAE(VAEModel):
    def __init__(
        self, data_shape: tuple[int, int, int], out_channels: int, latent_dim: int,
        channels: list[int], hidden: int, act: str = "relu",
    ):
        super().__init__()
        c, h, w = data_shape
        factor = 2 ** len(channels)
        if h % factor or w % factor:
            raise SpecError([{
                "field": "model.channels",
                "message": f"{len(channels)} stride-2 layers need H and W divisible by {factor};"
                           f" the data is {h}x{w} (use fewer channels entries)",
            }])
        self.latent_dim = latent_dim
        self.bottom = (channels[-1], h // factor, w // factor)
        n_flat = channels[-1] * (h // factor) * (w // factor)

        enc: list[nn.Module] = []
        for a, b in zip([c, *channels[:-1]], channels, strict=True):
            enc += [nn.Conv2d(a, b, 4, 2, 1), activation(act)]
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(n_flat, hidden), activation(act))
        self.to_mu = nn.Linear(hidden, latent_dim)
        self.to_logvar = nn.Linear(hidden, latent_dim)

        self.from_z = nn.Sequential(
            nn.Linear(latent_dim, hidden), activation(act), nn.Linear(hidden, n_flat),
            activation(act),
        )
        rev = list(reversed(channels))
        dec: list[nn.Module] = []
        for a, b in zip(rev[:-1], rev[1:], strict=True):
            dec += [nn.ConvTranspose2d(a, b, 4, 2, 1), activation(act)]
        dec.append(nn.ConvTranspose2d(rev[-1], out_channels, 4, 2, 1))
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hid = self.encoder(x)  # (B, hidden)
        return self.to_mu(hid), self.to_logvar(hid)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        hid = self.from_z(z).view(z.shape[0], *self.bottom)  # (B, C_last, h, w)
        return self.decoder(hid)  # (B, P*C, H, W)
