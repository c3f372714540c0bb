"""Discretized logistic decoder for 8-bit images (Salimans et al. 2017, PixelCNN++, eq. 2).

Pixel values x in {0, 1/255, ..., 1} are mapped to y = 2x - 1 in [-1, 1] (bin half-width
1/255). With mean m and scale s = exp(log s) of a logistic,

    P(x) = sigma((y + 1/255 - m)/s) - sigma((y - 1/255 - m)/s)      (interior bins)
    P(x = 0) = sigma((-1 + 1/255 - m)/s),  P(x = 1) = 1 - sigma((1 - 1/255 - m)/s)

so the 256 probabilities of a pixel sum to 1 and -log P is a discrete negative
log-likelihood (bits/dim comparable with published PixelCNN++/NVAE numbers). As in the
reference code (``discretized_mix_logistic_loss``): log s is floored at ``min_log_scale``
(-7); where the bin probability is < 1e-5 the log density at the bin centre times the bin
width (2/255) is used instead of the difference of CDFs (which cancels); the edge bins use
log sigma(a) = a - softplus(a) and log(1 - sigma(b)) = -softplus(b).

params (B, 2C, H, W): the mean m (in y units, unconstrained) and the raw log-scale.
The mean image shown to users is (clamp(m, -1, 1) + 1) / 2 (the logistic's mean, ignoring the
mass the edge bins collect).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vae_engine.likelihoods.base import Likelihood

HALF_BIN = 1.0 / 255.0


class DiscretizedLogistic(Likelihood):
    params_per_dim = 2
    support = "8bit"  # a mass function of 8-bit data (evaluate/honesty.py)

    def __init__(self, spec: object | None = None, min_log_scale: float | None = None):
        super().__init__()
        self.spec = spec
        floor = min_log_scale if min_log_scale is not None else getattr(spec, "min_log_scale", -7)
        self.min_log_scale = float(floor)

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = params.shape[1] // 2
        return params[:, :c], params[:, c:].clamp_min(self.min_log_scale)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log P(x) per value, (B, C, H, W)."""
        m, log_s = self._split(params)  # (B, C, H, W) each
        y = 2.0 * x - 1.0
        centred = y - m
        inv_s = torch.exp(-log_s)
        plus_in = inv_s * (centred + HALF_BIN)
        min_in = inv_s * (centred - HALF_BIN)
        log_cdf_plus = plus_in - F.softplus(plus_in)  # log sigma(plus_in), x = 0 bin
        log_one_minus_cdf_min = -F.softplus(min_in)  # log(1 - sigma(min_in)), x = 1 bin
        cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
        mid_in = inv_s * centred
        log_pdf_mid = mid_in - log_s - 2.0 * F.softplus(mid_in)  # log logistic density
        interior = torch.where(
            cdf_delta > 1e-5,
            torch.log(cdf_delta.clamp_min(1e-12)),
            log_pdf_mid + math.log(2.0 * HALF_BIN),
        )
        return torch.where(y < -0.999, log_cdf_plus,
                           torch.where(y > 0.999, log_one_minus_cdf_min, interior))

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -self.log_prob(params, x).flatten(1).sum(1)  # (B,)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        m, _ = self._split(params)
        return (m.clamp(-1.0, 1.0) + 1.0) / 2.0  # (B, C, H, W)

    def data_warnings(self, is_binary: bool) -> list[str]:
        return []
