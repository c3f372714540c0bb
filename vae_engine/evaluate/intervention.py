"""Disentanglement scores that need batches with one factor held fixed (ENGINE_SPEC §7):
the FactorVAE score (Kim & Mnih 2018, "Disentangling by factorising") and the beta-VAE score
(Higgins et al. 2017), after disentanglement_lib's ``factor_vae.py`` and ``beta_vae.py``.

Both take ``encode`` (images (n, C, H, W) -> codes (n, D), the encoder means) and a sampler
with ``draw(n, rng) -> factors (n, K)`` and ``render(factors) -> images`` (the shapes data
set's :class:`~vae_engine.data.shapes.ShapesSampler`).

- FactorVAE: the global standard deviation s_j of each code dimension comes from
  ``reference_codes`` (the evaluated split's codes; disentanglement_lib draws 10,000 fresh
  points); dimensions with global variance < 0.05 are dropped. A vote: pick a factor k
  uniformly, draw ``batch_size`` (64) images sharing a random value of v_k, vote (argmin_j
  Var(z_j / s_j) over the kept dimensions, k). The majority-vote classifier maps each
  dimension to its most frequent factor among ``n_train`` votes; the score is its accuracy
  on ``n_eval`` further votes. No dimension kept: score 0.
- beta-VAE: a point: pick k, draw ``batch_size`` pairs of factor sets where each pair
  shares v_k (the shared value differs between pairs), feature = mean_b |z1_b - z2_b| (D,);
  a ``LogisticRegression`` fitted on ``n_train`` points predicts k; the score is its accuracy
  on ``n_eval`` points.

Choice: disentanglement_lib uses 10,000 train and 5,000 eval votes (FactorVAE) and points
(beta-VAE); the defaults here are 300 and 150 (a CPU renders and encodes 64 x 450 images in
seconds), so the scores are noisier: their binomial standard error at 150 eval votes is at
most 0.04. Seeded: same seed, same score.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

Encode = Callable[[torch.Tensor], torch.Tensor]


# Images rendered and encoded per call: python overhead per call dominates small batches.
CHUNK_IMAGES = 4096


def _codes(encode: Encode, sampler: Any, factors: torch.Tensor) -> np.ndarray:
    """Render and encode (n, K) factor sets in chunks -> (n, D) codes as float64."""
    out = []
    with torch.no_grad():
        for f in factors.split(CHUNK_IMAGES):
            out.append(encode(sampler.render(f)).detach().to("cpu", torch.float64).numpy())
    return np.concatenate(out)


def factor_vae_score(
    encode: Encode, sampler: Any, reference_codes: Any, seed: int = 0, batch_size: int = 64,
    n_train: int = 300, n_eval: int = 150,
) -> dict[str, Any]:
    """FactorVAE score and the number of code dimensions it kept (see module docstring)."""
    ref = np.asarray(reference_codes.detach().cpu().double().numpy()
                     if hasattr(reference_codes, "detach") else reference_codes, dtype=float)
    variance = ref.var(0, ddof=1)  # (D,)
    active = variance >= 0.05
    if not active.any():
        return {"factor_vae_score": 0.0, "factor_vae_active_dims": 0}
    rng = np.random.default_rng([seed, 1])
    n_votes = n_train + n_eval
    ks = rng.integers(sampler.n_factors, size=n_votes)  # (V,) the fixed factor of each vote
    batches = []
    for k in ks:
        f = sampler.draw(batch_size, rng)  # (B, K)
        f[:, k] = f[0, k]
        batches.append(f)
    z = _codes(encode, sampler, torch.cat(batches)) / np.sqrt(variance)  # (V*B, D)
    var = z.reshape(n_votes, batch_size, -1).var(1, ddof=1)  # (V, D)
    var[:, ~active] = np.inf
    dims = var.argmin(1)  # (V,) the vote's code dimension
    votes = np.zeros((ref.shape[1], sampler.n_factors), dtype=np.int64)  # (D, K)
    np.add.at(votes, (dims[:n_train], ks[:n_train]), 1)
    hits = votes[dims[n_train:]].argmax(1) == ks[n_train:]
    return {"factor_vae_score": float(hits.mean()), "factor_vae_active_dims": int(active.sum())}


def beta_vae_score(
    encode: Encode, sampler: Any, seed: int = 0, batch_size: int = 64, n_train: int = 300,
    n_eval: int = 150,
) -> dict[str, Any]:
    """beta-VAE score: held-out accuracy of a logistic regression predicting the fixed
    factor from mean |z1 - z2| (see module docstring)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng([seed, 2])
    n_points = n_train + n_eval
    ks = rng.integers(sampler.n_factors, size=n_points)  # (P,)
    pairs = []
    for k in ks:
        f1 = sampler.draw(batch_size, rng)  # (B, K)
        f2 = sampler.draw(batch_size, rng)
        f2[:, k] = f1[:, k]
        pairs.append(torch.cat([f1, f2]))
    z = _codes(encode, sampler, torch.cat(pairs)).reshape(n_points, 2, batch_size, -1)
    x = np.abs(z[:, 0] - z[:, 1]).mean(1)  # (P, D)
    if len(np.unique(ks[:n_train])) < 2:
        return {"beta_vae_score": float("nan")}
    clf = LogisticRegression(max_iter=2000, random_state=seed).fit(x[:n_train], ks[:n_train])
    return {"beta_vae_score": float(np.mean(clf.predict(x[n_train:]) == ks[n_train:]))}
