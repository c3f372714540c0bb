"""Continuous Bernoulli decoder (Loaiza-Ganem & Cunningham 2019, NeurIPS).

The density on x in [0, 1] is ``p(x|λ) = C(λ) λ^x (1-λ)^(1-x)`` with the normaliser (paper
eq. 7) ``C(λ) = 2 artanh(1-2λ) / (1-2λ)``, ``C(0.5) = 2``. So

    -log p(x|λ) = BCEWithLogits(logits, x) - log C(λ),   λ = sigmoid(logits),

summed over C, H, W (ENGINE_SPEC section 3). ``log C`` uses the exact expression of PyTorch's
stable form (``torch.distributions.ContinuousBernoulli._cont_bern_log_norm``) outside a band
around 0.5 and a Taylor expansion inside it, where the exact one is 0/0. PyTorch's band
(0.499, 0.501] with two Taylor terms is too narrow for float32: just outside it the exact form
cancels (error up to 1.35e-5) and its gradient has the wrong sign for 0.001 < |λ-0.5| < 0.003.
Here the band is |λ-0.5| < 0.05 with four terms (ENGINE_SPEC section 7), d = λ-0.5:
``log C = log 2 + 4d²/3 + 104d⁴/45 + 16064d⁶/2835 + 227264d⁸/14175 + O(d¹⁰)`` (truncation
< 1e-11 in the band); the exact branch's float32 error outside it is < 4e-7.

Clamping: λ is clamped to [eps, 1 - eps] for the normaliser only, as PyTorch does; the BCE term
uses the raw logits (it is exact and stable for any logit). Because log C grows monotonically
with |λ - 0.5|, past the clamp the reported log-likelihood is a lower bound on the exact
continuous-Bernoulli log-density, never an overstatement.

The distribution mean is ``E[x] = λ/(2λ-1) + 1/(2 artanh(1-2λ))`` (paper eq. 8), which is not
λ: reconstructions and samples shown to users must use it.

This module is the network (torch); its config, ``build()`` and registration are in
continuous_bernoulli.py, which imports it lazily so that specs validate without torch (see
likelihoods/config.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vae_engine.likelihoods.base import Likelihood

# Half-width of the band around 0.5 where log C uses its Taylor series (see module docstring).
_LOG_NORM_HALF_BAND = 0.05
# Half-width of the Taylor band for the mean (see cb_mean for why it is wider).
_MEAN_HALF_BAND = 0.05


def _outside_band(lam: torch.Tensor) -> torch.Tensor:
    return (lam - 0.5).abs() >= _LOG_NORM_HALF_BAND


def _safe_for_exact(lam: torch.Tensor, outside: torch.Tensor) -> torch.Tensor:
    """λ where the exact branch is used, a harmless constant elsewhere.

    torch.where back-propagates into both branches (multiplying the unused one by 0), so the
    unused branch must be finite: 0 * inf = NaN would otherwise leak into the gradient.
    """
    return torch.where(outside, lam, torch.full_like(lam, 0.5 - 2 * _LOG_NORM_HALF_BAND))


def cb_log_norm(lam: torch.Tensor) -> torch.Tensor:
    """log C(λ), elementwise; λ must already lie in (0, 1). Same shape as ``lam``."""
    outside = _outside_band(lam)
    safe = _safe_for_exact(lam, outside)
    below = safe <= 0.5
    # Each side of 0.5 gets an argument that keeps the other side's log finite.
    log_1m2l = torch.log1p(-2.0 * torch.where(below, safe, torch.zeros_like(safe)))
    log_2lm1 = torch.log(2.0 * torch.where(below, torch.ones_like(safe), safe) - 1.0)
    # log|2 artanh(1-2λ)| - log|1-2λ|, with 2 artanh(1-2λ) = log(1-λ) - log λ.
    exact = torch.log(torch.abs(torch.log1p(-safe) - torch.log(safe))) - torch.where(
        below, log_1m2l, log_2lm1
    )
    x = (lam - 0.5) ** 2
    poly = 4.0 / 3.0 + (104.0 / 45.0 + (16064.0 / 2835.0 + 227264.0 / 14175.0 * x) * x) * x
    taylor = math.log(2.0) + poly * x
    return torch.where(outside, exact, taylor)


def cb_mean(lam: torch.Tensor) -> torch.Tensor:
    """E[x] under CB(λ), elementwise; λ in (0, 1). Tends to 0.5 as λ -> 0.5.

    The exact form adds two terms of size ~1/|2λ-1| that cancel to ~0.5; at PyTorch's band edge
    (|λ-0.5| = 0.001) that loses ~3e-3 in float32. So the mean uses a wider band, |λ-0.5| <
    0.05, and one more Taylor term than PyTorch: with d = λ-0.5 (from x/artanh x = 1 - x²/3 -
    4x⁴/45 - 44x⁶/945 - ...), E[x] = 0.5 + d/3 + 16d³/45 + 704d⁵/945 + O(d⁷), truncation error
    < 2e-9 in the band and exact-branch float32 error ~1e-6 outside it.
    """
    outside = (lam - 0.5).abs() >= _MEAN_HALF_BAND
    safe = torch.where(outside, lam, torch.full_like(lam, 0.5 - 2 * _MEAN_HALF_BAND))
    exact = safe / (2.0 * safe - 1.0) + 1.0 / (torch.log1p(-safe) - torch.log(safe))
    d = lam - 0.5
    d2 = d**2
    taylor = 0.5 + (1.0 / 3.0 + (16.0 / 45.0 + 704.0 / 945.0 * d2) * d2) * d
    return torch.where(outside, exact, taylor)


class ContinuousBernoulli(Likelihood):
    """Continuous Bernoulli with decoder logits. params (B, C, H, W) are logits."""

    params_per_dim = 1
    support = "continuous"  # a density on [0, 1] (evaluate/honesty.py)

    def __init__(self, spec: object | None = None, eps: float | None = None):
        super().__init__()
        self.spec = spec
        self.eps = float(eps if eps is not None else getattr(spec, "eps", 1e-6))

    def probs(self, params: torch.Tensor) -> torch.Tensor:
        """λ = sigmoid(logits) clamped to [eps, 1 - eps]. (B, C, H, W)"""
        return torch.sigmoid(params).clamp(self.eps, 1.0 - self.eps)

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(params, x, reduction="none")  # (B, C, H, W)
        log_norm = cb_log_norm(self.probs(params))  # (B, C, H, W)
        return (bce - log_norm).flatten(1).sum(1)  # (B,)

    def reference(self, params: torch.Tensor) -> torch.distributions.Distribution:
        # torch clamps λ at float eps rather than self.eps: equal for |logit| <~ 10.
        return torch.distributions.ContinuousBernoulli(logits=params)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return cb_mean(self.probs(params)).clamp(0.0, 1.0)  # (B, C, H, W)
