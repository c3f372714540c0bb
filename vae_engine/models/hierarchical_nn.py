"""A small NVAE-style hierarchical VAE (Vahdat & Kautz 2020, "NVAE: A Deep Hierarchical
Variational Autoencoder", section 3 and figure 2), sized for CPU tests: the network. Its
config, builder and registration are in hierarchical.py (torch-free; see models/config.py).

Bottom-up path: a stride-2 stem, then one more stride-2 conv to the largest latent scale, then
per latent scale (largest first) ``groups_per_scale[k]`` blocks of residual cells, each
leaving a feature for one latent group, with a stride-2 conv between scales.

Top-down path: from a learned constant at the smallest scale, for each group in top-down
order (smallest scale first):
    prior   p(z_g | z_<g) = N(mu_p, sigma_p) from the decoder state h (N(0, I) for the first);
    posterior q(z_g | x, z_<g) = N(mu_p + dmu, ...) with (dmu, dlogvar) from the bottom-up
    feature and h (NVAE's residual parametrisation);
    h <- cells(combine(h, z_g)),
with nearest-neighbour upsampling + conv between scales and a final upsampling to the image.

Cells are x + conv(silu(conv(silu(x)))) without batch norm (so evaluation and the IWAE bound
do not depend on the batch). mu and log sigma are soft-clamped to (-5, 5) like NVAE's
``soft_clamp5``.

Shapes: z_g is (B, latent_channels, h_s, w_s); ``ModelOutput`` carries every group
flattened and concatenated in top-down order, ``group_sizes`` (units per group) and
``group_scales`` (scale index i, 0 = smallest spatial scale).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vae_engine.models.base import ModelOutput, VAEModel, gaussian_log_prob


def soft_clamp(x: torch.Tensor, bound: float = 5.0) -> torch.Tensor:
    return bound * torch.tanh(x / bound)


def gaussian_kl(
    mu_q: torch.Tensor, lv_q: torch.Tensor, mu_p: torch.Tensor, lv_p: torch.Tensor
) -> torch.Tensor:
    """Elementwise KL(N(mu_q, e^lv_q) || N(mu_p, e^lv_p))."""
    return 0.5 * (lv_p - lv_q + (lv_q.exp() + (mu_q - mu_p).pow(2)) * torch.exp(-lv_p) - 1.0)


def halve(n: int) -> int:
    """Output size of a 3x3, stride-2, padding-1 conv."""
    return (n + 1) // 2


class ResCell(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        with torch.no_grad():  # start close to the identity, as NVAE's scaled residuals do
            self.conv2.weight.mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


def cells(c: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[ResCell(c) for _ in range(n)])


def zero_conv(c_in: int, c_out: int, k: int = 3) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, k, padding=k // 2)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class HierarchicalVAE(VAEModel):
    def __init__(
        self, data_shape: tuple[int, int, int], out_channels: int, channels: int = 16,
        latent_channels: int = 2, groups_per_scale: list[int] | None = None,
        cells_per_group: int = 1,
    ):
        super().__init__()
        c_in, h, w = data_shape
        gps = list(groups_per_scale or [2, 2])  # largest scale first (NVAE order)
        ch, lc = channels, latent_channels
        self.data_shape, self.lc = data_shape, lc
        # spatial sizes: stem (H/2), then latent scales largest-first
        self.stem_size = (halve(h), halve(w))
        sizes = [(halve(self.stem_size[0]), halve(self.stem_size[1]))]
        for _ in gps[1:]:
            sizes.append((halve(sizes[-1][0]), halve(sizes[-1][1])))
        self.scale_sizes = sizes[::-1]  # indexed by scale i, 0 = smallest
        n_scales = len(gps)
        # groups in top-down order with their scale index i
        self.group_scales = tuple(i for i in range(n_scales) for _ in range(gps[n_scales - 1 - i]))
        self.group_sizes = tuple(lc * self.scale_sizes[i][0] * self.scale_sizes[i][1]
                                 for i in self.group_scales)
        self.latent_dim = sum(self.group_sizes)
        n_groups = len(self.group_scales)

        # bottom-up
        self.stem = nn.Conv2d(c_in, ch, 3, stride=2, padding=1)
        self.enc_down0 = nn.Conv2d(ch, ch, 3, stride=2, padding=1)
        self.enc_cells = nn.ModuleList(cells(ch, cells_per_group) for _ in range(n_groups))
        self.enc_down = nn.ModuleList(
            nn.Conv2d(ch, ch, 3, stride=2, padding=1) for _ in range(n_scales - 1)
        )
        self.gps = gps
        # top-down
        self.h0 = nn.Parameter(torch.zeros(1, ch, *self.scale_sizes[0]))
        self.dec_cells = nn.ModuleList(cells(ch, cells_per_group) for _ in range(n_groups))
        self.prior_nets = nn.ModuleList(zero_conv(ch, 2 * lc) for _ in range(n_groups))
        self.post_nets = nn.ModuleList(
            nn.Sequential(nn.Conv2d(2 * ch, ch, 3, padding=1), nn.SiLU(), zero_conv(ch, 2 * lc))
            for _ in range(n_groups)
        )
        with torch.no_grad():  # small, non-zero posterior deltas at init
            for net in self.post_nets:
                nn.init.normal_(net[2].weight, std=1e-3)
        self.combiners = nn.ModuleList(nn.Conv2d(ch + lc, ch, 1) for _ in range(n_groups))
        self.dec_up = nn.ModuleList(nn.Conv2d(ch, ch, 3, padding=1) for _ in range(n_scales - 1))
        self.post_up1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.post_cells = cells(ch, 1)
        self.post_up2 = nn.Conv2d(ch, out_channels, 3, padding=1)

    # ------------------------------------------------------------------ paths

    def bottom_up(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x (B, C, H, W) -> one feature per group, in top-down order."""
        s = self.enc_down0(F.silu(self.stem(2 * x - 1)))
        feats, g = [], 0
        for k, n in enumerate(self.gps):  # largest scale first
            for _ in range(n):
                s = self.enc_cells[g](s)
                feats.append(s)
                g += 1
            if k < len(self.gps) - 1:
                s = self.enc_down[k](F.silu(s))
        return feats[::-1]

    def top_down(
        self, b: int, feats: list[torch.Tensor] | None = None,
        zs: list[torch.Tensor] | None = None, temperature: float = 1.0,
        generator: torch.Generator | None = None, use_mean: bool = False,
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, ...]]]:
        """Run the decoder. With ``feats`` z_g ~ q (or its mean if ``use_mean``); with ``zs``
        the given codes; else z_g ~ p (scaled by ``temperature``).

        Returns decoder params (B, P*C, H, W) and per group (z, mu_q, lv_q, mu_p, lv_p), each
        (B, lc, h, w) (mu_q, lv_q are None when no posterior is computed).
        """
        h = self.h0.expand(b, -1, -1, -1)
        out, g = [], 0
        for i, _ in enumerate(self.scale_sizes):
            if i > 0:
                h = self.dec_up[i - 1](F.interpolate(h, size=self.scale_sizes[i]))
            for _ in range(self.gps[len(self.gps) - 1 - i]):
                if g > 0:
                    h = self.dec_cells[g](h)
                    mu_p, lv_p = self.prior_nets[g](F.silu(h)).chunk(2, 1)
                else:
                    mu_p = torch.zeros(b, self.lc, *self.scale_sizes[0], device=h.device,
                                       dtype=h.dtype)
                    lv_p = torch.zeros_like(mu_p)
                mu_p, lv_p = soft_clamp(mu_p), 2 * soft_clamp(0.5 * lv_p)
                mu_q = lv_q = None
                if feats is not None:
                    d_mu, d_lv = self.post_nets[g](F.silu(torch.cat([h, feats[g]], 1))).chunk(2, 1)
                    mu_q, lv_q = soft_clamp(mu_p + d_mu), 2 * soft_clamp(0.5 * (lv_p + d_lv))
                    z = mu_q if use_mean else self._sample(mu_q, lv_q, 1.0, generator)
                elif zs is not None:
                    z = zs[g]
                else:
                    z = self._sample(mu_p, lv_p, temperature, generator)
                out.append((z, mu_q, lv_q, mu_p, lv_p))
                h = self.combiners[g](torch.cat([h, z], 1))
                g += 1
        h = self.post_cells(self.post_up1(F.interpolate(F.silu(h), size=self.stem_size)))
        params = self.post_up2(F.interpolate(F.silu(h), size=self.data_shape[1:]))
        return params, out

    @staticmethod
    def _sample(mu: torch.Tensor, lv: torch.Tensor, t: float, gen: torch.Generator | None):
        eps = torch.randn(mu.shape, generator=gen, device=mu.device, dtype=mu.dtype)
        return mu + t * torch.exp(0.5 * lv) * eps

    @staticmethod
    def _flat(ts: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([t.flatten(1) for t in ts], 1)  # (B, M)

    # ------------------------------------------------------------------ VAEModel API

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> ModelOutput:
        params, groups = self.top_down(x.shape[0], self.bottom_up(x), generator=generator)
        z, mu_q, lv_q, mu_p, lv_p = (list(t) for t in zip(*groups, strict=True))
        kl = [gaussian_kl(*a) for a in zip(mu_q, lv_q, mu_p, lv_p, strict=True)]
        return ModelOutput(
            params, self._flat(z), self._flat(mu_q), self._flat(lv_q), self._flat(kl),
            self.group_sizes, self.group_scales,
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters along the mean path (each z_g set to its posterior mean),
        flattened (B, M): a deterministic summary of q(z|x) for analysis."""
        _, groups = self.top_down(x.shape[0], self.bottom_up(x), use_mean=True)
        return self._flat([g[1] for g in groups]), self._flat([g[2] for g in groups])

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, M), groups concatenated in top-down order -> decoder params."""
        zs = [
            c.reshape(z.shape[0], self.lc, *self.scale_sizes[i])
            for c, i in zip(z.split(list(self.group_sizes), 1), self.group_scales, strict=True)
        ]
        return self.top_down(z.shape[0], zs=zs)[0]

    def sample_prior(
        self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return self.top_down(n, temperature=temperature, generator=generator)[0]

    def log_weights(
        self, x: torch.Tensor, k: int, nll_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """log p(x|z) + sum_g log p(z_g|z_<g) - sum_g log q(z_g|x, z_<g), shape (k, B).

        Runs the bottom-up path once and the top-down path on the batch repeated k times.
        """
        b = x.shape[0]
        feats = [f.repeat(k, 1, 1, 1) for f in self.bottom_up(x)]  # (k*B, ...), k-major
        params, groups = self.top_down(k * b, feats, generator=generator)
        log_q = sum(gaussian_log_prob(z, mq, lq).flatten(1).sum(1) for z, mq, lq, _, _ in groups)
        log_p = sum(gaussian_log_prob(z, mp, lp).flatten(1).sum(1) for z, _, _, mp, lp in groups)
        xk = x.repeat(k, 1, 1, 1)  # (k*B, C, H, W), same order as feats
        log_px = -nll_fn(params, xk)
        return (log_px + log_p - log_q).reshape(k, b)


__all__ = ["HierarchicalVAE", "gaussian_kl"]
