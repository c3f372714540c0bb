"""Stochastic binarization of grey-level images in [0, 1].

Each pixel value is read as a Bernoulli probability and replaced by a sample, the standard
preparation for a Bernoulli decoder (Salakhutdinov & Murray 2008 fixed one sample of MNIST,
"static"; Burda et al. 2015 and most later work draw a fresh sample for every training
batch, "dynamic"). A Bernoulli likelihood is only a normalised density on {0, 1} data, so
this is how the engine avoids the "pervasive error" (ENGINE_SPEC section 3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def binarize_static(x: torch.Tensor, seed: int) -> torch.Tensor:
    """One fixed Bernoulli sample of ``x``: the same ``x`` and ``seed`` give the same bits.

    ``x``: (N, C, H, W) float in [0, 1]. Returns a new float tensor of the same shape and
    dtype holding only 0 and 1. The generator is private, so the global RNG (and hence the
    training seed) neither influences nor is consumed by this call.
    """
    import torch  # not at module level: the spec imports this module

    gen = torch.Generator(device=x.device).manual_seed(int(seed))
    return torch.bernoulli(x, generator=gen)  # (N, C, H, W)


def binarize_batch(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A fresh Bernoulli sample of a training batch (dynamic binarization).

    ``x``: (B, C, H, W) float in [0, 1] on any device; ``generator`` must live on the same
    device (``None`` uses the default generator of that device, seeded by the trainer).
    """
    # The tensor method is torch.bernoulli itself, without importing torch here (the spec
    # imports this package and must stay torch-free).
    return x.bernoulli(generator=generator)  # (B, C, H, W)
