"""The σ-VAE variance modes of the Gaussian decoder (Rybkin et al. 2021), named once for the
spec (gaussian.py) and the module (gaussian_nn.py), which must not import each other."""

from __future__ import annotations

from typing import Literal, get_args

SigmaMode = Literal[
    "fixed", "learned_shared", "optimal_shared", "optimal_per_image", "learned_per_pixel"
]
SIGMA_MODES: tuple[str, ...] = get_args(SigmaMode)
