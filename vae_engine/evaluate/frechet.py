"""Fréchet distance between two feature sets (ENGINE_SPEC section 7), and ``fd_lenet``.

d² = ||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1 S2)^½) (Fréchet 1957; Dowson & Landau 1982; the
FID of Heusel et al. 2017 with Inception features). Computed in float64; Tr((S1 S2)^½) =
Tr((S1^½ S2 S1^½)^½), the square roots from symmetric eigen-decompositions (eigenvalues
clipped at 0), which needs no complex ``sqrtm`` and is exact for PSD matrices.

``fd_lenet`` is this distance on the 128-d penultimate features of vaelab's own LeNet-style
classifier (lenet.py), trained on the data set's training split: it ranks models on one data
set and is **not comparable with published FID numbers** (different network, features, data).
"""

from __future__ import annotations

from typing import Any

import torch


def _sqrt_psd(a: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(a)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to features f1 (N1, F) and f2 (N2, F)."""
    a, b = f1.double(), f2.double()
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    r1 = _sqrt_psd(s1)
    mid = r1 @ s2 @ r1
    tr_sqrt = torch.linalg.eigvalsh((mid + mid.T) / 2).clamp_min(0).sqrt().sum()
    d2 = (mu1 - mu2).pow(2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * tr_sqrt
    return float(d2.clamp_min(0))


@torch.no_grad()
def lenet_features(net: Any, x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) images -> (N, 128) features, on the CPU in chunks of 500."""
    return torch.cat([net.features(xb.detach().cpu().float()) for xb in x.split(500)])


def fd_lenet(net: Any, reference: torch.Tensor, other: torch.Tensor) -> float:
    """fd_lenet between two image sets (N, C, H, W) in [0, 1]."""
    return frechet_distance(lenet_features(net, reference), lenet_features(net, other))
