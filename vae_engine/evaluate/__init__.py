"""Evaluation: the rate-distortion summary and the metrics that go with it.

- summary.py   ELBO, rate, distortion, bits/dim, IWAE, active units, per-unit/group KL
               (ENGINE_SPEC section 4)
- bounds.py    the IWAE bound and bits/dim
- mi.py        I(x; z) and marginal KL over a whole split, with their ceiling log N
- honesty.py   whether elbo/iwae bound a normalised likelihood of the data (``bound``)
- metrics.py   the registry of the optional metrics (disentanglement, FactorVAE, beta-VAE,
               fd_lenet), run at the final evaluation or on request
- disentanglement.py, intervention.py, frechet.py, lenet.py: their implementations

Importing this package (and metrics.py, which the spec and the catalogue read) does not
import torch; the functions below load their modules on first use.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "evaluate": "vae_engine.evaluate.summary",
    "iwae_bound": "vae_engine.evaluate.bounds",
    "log_mean_exp": "vae_engine.evaluate.bounds",
    "bits_per_dim": "vae_engine.evaluate.bounds",
    "mutual_information": "vae_engine.evaluate.mi",
    "disentanglement_scores": "vae_engine.evaluate.disentanglement",
    "frechet_distance": "vae_engine.evaluate.frechet",
    "factor_vae_score": "vae_engine.evaluate.intervention",
    "beta_vae_score": "vae_engine.evaluate.intervention",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


__all__ = sorted(_LAZY)
