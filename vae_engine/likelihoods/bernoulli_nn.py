"""Pixel-wise Bernoulli decoder, the classic binarised-MNIST likelihood (Kingma & Welling 2014).

ENGINE_SPEC section 3: ``-log p(x|z) = BCEWithLogits(logits, x)`` summed over C, H, W. The
decoder params are logits, one per dim (P = 1).

On non-binary data this is *not* a normalised density: Loaiza-Ganem & Cunningham 2019 ("The
continuous Bernoulli: fixing a pervasive error in variational autoencoders") show that the
missing normaliser biases the fit. The engine therefore warns and points to binarisation or
the continuous Bernoulli.

This module is the network (torch); its config, ``build()`` and registration are in
bernoulli.py, which imports it lazily so that specs validate without torch (see
likelihoods/config.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vae_engine.likelihoods.base import Likelihood

NON_BINARY_WARNING = (
    "likelihood 'bernoulli' on non-binary data is not a normalised density (the 'pervasive "
    "error' of Loaiza-Ganem & Cunningham 2019): its NLL/ELBO are not comparable log-likelihoods. "
    "Set dataset.binarize: static|dynamic, or use likelihood.kind: continuous_bernoulli."
)


class Bernoulli(Likelihood):
    """Bernoulli with decoder logits. params (B, C, H, W) are logits."""

    params_per_dim = 1
    support = "binary"  # what it is normalised over (evaluate/honesty.py)

    def __init__(self, spec: object | None = None):
        super().__init__()
        self.spec = spec

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # BCE-with-logits is the stable form of -[x log σ(l) + (1-x) log(1-σ(l))].
        per_dim = F.binary_cross_entropy_with_logits(params, x, reduction="none")  # (B, C, H, W)
        return per_dim.flatten(1).sum(1)  # (B,)

    def reference(self, params: torch.Tensor) -> torch.distributions.Distribution:
        return torch.distributions.Bernoulli(logits=params)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)  # (B, C, H, W), already in [0, 1]

    def data_warnings(self, is_binary: bool) -> list[str]:
        return [] if is_binary else [NON_BINARY_WARNING]
