"""Gaussian decoder with the sigma-VAE variance modes (Rybkin, Daniilidis & Levine 2021,
"Simple and Effective VAE Training with Calibrated Decoders", ICML).

Per dim, ``-log N(x; μ, σ²) = 0.5((x-μ)/σ)² + log σ + 0.5 log 2π``, summed over C, H, W
(ENGINE_SPEC section 3). The decoder's output is used as μ unsquashed; :meth:`Gaussian.mean`
clamps it to [0, 1] only for display. σ modes:

- ``fixed``: σ = ``sigma_value`` (default 1), used exactly.
- ``learned_shared`` (σ-VAE): one scalar parameter log σ, initialised at 0, trained with the
  model.
- ``optimal_shared`` (σ-VAE analytic, paper section 4): ``σ*² = mean over batch and dims of
  (x-μ)²``, the closed-form minimiser of the batch NLL. In training mode it is computed from the
  current batch, as the reference code does, and stored in the buffer ``log_sigma_estimate``.
  In eval mode the stored training estimate is used instead, so the test density is a fixed,
  proper density that does not peek at the test batch (the buffer is in the state dict, so a
  checkpoint evaluates the same way). Before any training step the buffer holds 0 (σ = 1).
- ``optimal_per_image``: ``σ_b*² = mean over dims of (x_b-μ_b)²``, per example, in both modes
  (it is a function of x and μ by definition, so it stays as is in eval).
- ``learned_per_pixel``: the decoder predicts log σ per dim (P = 2: the first C channels are μ,
  the next C raw log σ) -- the "naive" calibrated baseline the paper reports as often worse.

Every learned or optimal log σ goes through the σ-VAE code's ``softclip(t, min) = min +
softplus(t - min)`` with ``min = min_log_sigma`` (default -6). It is not the identity above
the floor: softclip(0, -6) = 0.0024757. The optimal σ* is not detached (as in the reference
code): at the minimiser its gradient contribution vanishes up to the softclip offset.

This module is the network (torch); its config, ``build()`` and registration are in
gaussian.py, which imports it lazily so that specs validate without torch (see
likelihoods/config.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vae_engine.likelihoods.base import Likelihood
from vae_engine.likelihoods.sigma_modes import SIGMA_MODES

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

def softclip(t: torch.Tensor, min_value: float) -> torch.Tensor:
    """Smooth lower clamp ``min + softplus(t - min)`` of the σ-VAE code."""
    return min_value + F.softplus(t - min_value)


def gaussian_nll(x: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """Elementwise -log N(x; μ, exp(log_sigma)²); broadcasts. (B, C, H, W)"""
    return 0.5 * (x - mu) ** 2 * torch.exp(-2.0 * log_sigma) + log_sigma + _HALF_LOG_2PI


def _log_rms(sq_err: torch.Tensor, dims: tuple[int, ...] | None) -> torch.Tensor:
    """log sqrt(mean(sq_err)) over ``dims`` (all when None), i.e. the optimal log σ."""
    mse = sq_err.mean() if dims is None else sq_err.mean(dim=dims)
    # A perfect reconstruction gives mse = 0; the floor keeps log and its gradient finite
    # (softclip then lifts it to min_log_sigma anyway).
    return 0.5 * torch.log(mse.clamp_min(torch.finfo(mse.dtype).tiny))


class Gaussian(Likelihood):
    """Gaussian decoder. params (B, P*C, H, W): μ, plus raw log σ when P = 2."""

    support = "continuous"  # a density (evaluate/honesty.py)

    def __init__(
        self,
        spec: object | None = None,
        *,
        sigma: str | None = None,
        sigma_value: float | None = None,
        min_log_sigma: float | None = None,
    ):
        super().__init__()
        self.spec = spec
        self.mode = sigma if sigma is not None else getattr(spec, "sigma", "fixed")
        if self.mode not in SIGMA_MODES:
            raise ValueError(f"unknown sigma mode {self.mode!r}; valid: {', '.join(SIGMA_MODES)}")
        value = sigma_value if sigma_value is not None else getattr(spec, "sigma_value", 1.0)
        self.sigma_value = float(value)
        floor = min_log_sigma if min_log_sigma is not None else getattr(spec, "min_log_sigma", -6.0)
        self.min_log_sigma = float(floor)
        self.params_per_dim = 2 if self.mode == "learned_per_pixel" else 1
        self.fits_sigma_to_x = self.mode == "optimal_per_image"  # never a bound (honesty.py)

        if self.mode == "learned_shared":
            self.log_sigma = nn.Parameter(torch.zeros(()))  # raw, before softclip
        if self.mode == "optimal_shared":
            # Last training-batch estimate of log σ* (after softclip), used in eval mode.
            self.register_buffer("log_sigma_estimate", torch.zeros(()))
        self._last_sigma: torch.Tensor | None = None  # detached, for metrics()

    # ----------------------------------------------------------------- helpers

    def _split(self, params: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (μ, raw log σ or μ again). Both (B, C, H, W)."""
        channels = x.shape[1]
        if params.shape[1] != self.params_per_dim * channels:
            raise ValueError(
                f"gaussian ({self.mode}) expects {self.params_per_dim}*C = "
                f"{self.params_per_dim * channels} decoder channels, got {params.shape[1]}"
            )
        if self.params_per_dim == 1:
            return params, params
        return params[:, :channels], params[:, channels:]

    def _log_sigma(self, mu: torch.Tensor, raw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The log σ this mode picks, broadcastable to (B, C, H, W)."""
        if self.mode == "fixed":
            return torch.full((), math.log(self.sigma_value), dtype=mu.dtype, device=mu.device)
        if self.mode == "learned_shared":
            return softclip(self.log_sigma, self.min_log_sigma).to(mu.dtype)  # ()
        if self.mode == "optimal_shared":
            if not self.training:
                return self.log_sigma_estimate.to(mu.dtype)  # ()
            log_sigma = softclip(_log_rms((x - mu) ** 2, None), self.min_log_sigma)  # ()
            self.log_sigma_estimate.copy_(log_sigma.detach())
            return log_sigma
        if self.mode == "optimal_per_image":
            log_rms = _log_rms((x - mu) ** 2, (1, 2, 3))  # (B,)
            return softclip(log_rms, self.min_log_sigma)[:, None, None, None]  # (B, 1, 1, 1)
        return softclip(raw, self.min_log_sigma)  # learned_per_pixel: (B, C, H, W)

    # ------------------------------------------------------------------- API

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mu, raw = self._split(params, x)  # (B, C, H, W) each
        log_sigma = self._log_sigma(mu, raw, x)  # (), (B, 1, 1, 1) or (B, C, H, W)
        # Mean over whatever σ varies along; a tensor, not .item(), to avoid a device sync.
        self._last_sigma = torch.exp(log_sigma.detach()).mean()
        return gaussian_nll(x, mu, log_sigma).flatten(1).sum(1)  # (B,)

    def reference(self, params: torch.Tensor) -> torch.distributions.Distribution | None:
        """Normal(μ, σ) for the fixed mode; the other modes pick σ from the data or a
        parameter, which no torch distribution does."""
        if self.mode != "fixed":
            return None
        return torch.distributions.Normal(params, self.sigma_value)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        channels = params.shape[1] // self.params_per_dim
        return params[:, :channels].clamp(0.0, 1.0)  # (B, C, H, W)

    def sigma(self) -> float:
        """Current σ: the parameter / stored estimate for shared modes, else last batch mean."""
        if self.mode == "fixed":
            return self.sigma_value
        if self.mode == "learned_shared":
            return float(torch.exp(softclip(self.log_sigma.detach(), self.min_log_sigma)))
        if self.mode == "optimal_shared":
            return float(torch.exp(self.log_sigma_estimate))
        return float(self._last_sigma) if self._last_sigma is not None else float("nan")

    def sigma_tensor(self) -> torch.Tensor | float:
        """:meth:`sigma` without reading the device (a tensor, or the fixed float)."""
        if self.mode == "fixed":
            return self.sigma_value
        if self.mode == "learned_shared":
            return torch.exp(softclip(self.log_sigma.detach(), self.min_log_sigma))
        if self.mode == "optimal_shared":
            return torch.exp(self.log_sigma_estimate)
        return self._last_sigma if self._last_sigma is not None else float("nan")

    def metrics(self) -> dict[str, torch.Tensor | float]:
        """Device tensors: the trainer reads them with its other metrics (no sync here)."""
        if self.mode in ("optimal_per_image", "learned_per_pixel") and self._last_sigma is None:
            return {}  # no batch seen yet: nothing to report (rather than a NaN)
        return {"sigma": self.sigma_tensor()}
