"""Decoder likelihoods p(x|z): the Likelihood base class (an nn.Module, torch).

The decoder emits ``params`` of shape (B, P*C, H, W) where P = ``params_per_dim`` (1 for a
mean/logit per pixel, 2 when the decoder also predicts a per-pixel log sigma). A likelihood
turns params and data into a per-example negative log-likelihood summed over all dims
(ENGINE_SPEC section 1: nats per example) and into the distribution mean shown to users.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.distributions import Distribution

from vae_engine.likelihoods.config import LIKELIHOODS  # noqa: F401  (re-export)


class Likelihood(nn.Module):
    params_per_dim: int = 1
    # What the likelihood is normalised over: "binary" (a pmf of 0/1 data), "8bit" (a pmf of
    # 8-bit data), "continuous" (a density); vae_engine.evaluate.honesty decides from it
    # whether elbo/iwae bound anything. fits_sigma_to_x: parameters fitted to the scored x.
    support: str = "unknown"
    fits_sigma_to_x: bool = False

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x | params), summed over C, H, W. params (B, P*C, H, W), x (B, C, H, W) -> (B,)"""
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The distribution's mean, (B, C, H, W), clamped to [0, 1] for display."""
        raise NotImplementedError

    def reference(self, params: torch.Tensor) -> Distribution | None:
        """The same density as a ``torch.distributions`` object over (B, C, H, W), where one
        exists (the contract tests compare ``nll`` with its ``log_prob``); None otherwise."""
        return None

    def metrics(self) -> dict[str, Any]:
        """Scalars to log every step (e.g. ``sigma``): floats or device tensors (read by the
        trainer with its other metrics, never here); empty by default."""
        return {}

    def data_warnings(self, is_binary: bool) -> list[str]:
        """Warnings about a mismatch between this likelihood and the data."""
        return []

