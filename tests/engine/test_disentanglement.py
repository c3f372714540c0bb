"""Disentanglement metrics (ENGINE_SPEC section 7): sanity cases of the code-level metrics
(MIG, SAP, DCI) and of the intervention scores (FactorVAE, beta-VAE).

Synthetic factors: seed 0, N = 2000 examples, K = 4 independent discrete factors with 3, 6,
10 and 8 values. Tolerances: "~1" means >= 0.95, "~0" means <= 0.05 (random codes) or <= 0.05
(fully mixed codes: every code dimension an equal-weight +-1 mixture of all factors).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_engine.data.shapes import N_VALUES, ShapesSampler, fixed_factor_batch
from vae_engine.evaluate import beta_vae_score, disentanglement_scores, factor_vae_score

N, SEED = 2000, 0
N_VALUES_SYN = (3, 6, 10, 8)


@pytest.fixture(scope="module")
def factors() -> np.ndarray:
    rng = np.random.default_rng(SEED)
    return np.stack([rng.integers(0, n, N) for n in N_VALUES_SYN], 1).astype(float)  # (N, 4)


@pytest.fixture(scope="module")
def identity_scores(factors):
    return disentanglement_scores(factors, factors, seed=SEED)


def test_public_function_and_keys(identity_scores):
    import vae_engine

    assert vae_engine.disentanglement_scores is disentanglement_scores
    for key in ("mig", "sap", "dci_disentanglement", "dci_completeness", "dci_informativeness"):
        assert 0.0 <= identity_scores[key] <= 1.0 + 1e-9, key


def test_codes_equal_to_factors_score_one(identity_scores):
    s = identity_scores
    assert s["mig"] >= 0.95
    assert s["dci_disentanglement"] >= 0.95
    assert s["dci_completeness"] >= 0.95
    assert s["dci_informativeness"] >= 0.95
    assert s["sap"] > 0.1  # one linear classifier per code dim: only part of each factor


def test_random_codes_score_zero(factors):
    codes = np.random.default_rng(1).normal(size=(N, 6))
    s = disentanglement_scores(codes, factors, seed=SEED)
    for key in ("mig", "sap", "dci_disentanglement", "dci_completeness"):
        assert s[key] <= 0.05, (key, s[key])


def test_fully_mixed_codes_score_zero(factors):
    z = (factors - factors.mean(0)) / factors.std(0)
    hadamard = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2
    s = disentanglement_scores(z @ hadamard, factors, seed=SEED)
    for key in ("mig", "sap", "dci_disentanglement", "dci_completeness"):
        assert s[key] <= 0.05, (key, s[key])
    assert s["dci_informativeness"] > 0.5  # the information is there, just mixed


def test_permuting_rescaling_and_flipping_codes_changes_nothing(factors):
    rng = np.random.default_rng(2)
    codes = factors + 0.3 * rng.normal(size=factors.shape)  # (N, 4) noisy factors
    codes = np.concatenate([codes, rng.normal(size=(N, 2))], 1)  # (N, 6)
    base = disentanglement_scores(codes, factors, seed=SEED)
    perm = [3, 5, 0, 2, 4, 1]
    scale = np.array([2.0, -0.5, 10.0, 1e-3, -7.0, 3.0])
    moved = disentanglement_scores(codes[:, perm] * scale + 4.0, factors, seed=SEED)
    for key in ("mig", "sap"):  # exactly invariant
        assert moved[key] == pytest.approx(base[key], abs=1e-9), key
    # The forests see the columns in another order, so their seeded feature draws differ:
    # invariant up to the forest's own noise (measured 4e-4 here; tolerance 0.01).
    for key in ("dci_disentanglement", "dci_completeness", "dci_informativeness"):
        assert moved[key] == pytest.approx(base[key], abs=0.01), key


def test_continuous_factors_and_tensors_are_accepted(factors):
    rng = np.random.default_rng(3)
    cont = rng.uniform(size=(N, 2))  # (N, 2) continuous factors
    s = disentanglement_scores(torch.tensor(cont), torch.tensor(cont), [False, False], SEED)
    assert s["mig"] > 0.9 and s["sap"] > 0.9  # squared correlation 1 for its own dim
    with pytest.raises(ValueError):
        disentanglement_scores(cont, cont, [False], SEED)


# --------------------------------------------------------------- FactorVAE and beta-VAE


class _FactorsAsImages(ShapesSampler):
    """The shapes sampler with render = identity, so encoders see the factor values."""

    def render(self, factors: torch.Tensor) -> torch.Tensor:
        return factors


def test_intervention_scores_perfect_and_chance():
    """Seed 0, 300 train / 150 eval votes: codes = rescaled factors score 1; random codes
    score near chance 1/5 (< 0.4, binomial sd at 150 votes ~ 0.03)."""
    s = _FactorsAsImages(32)
    ref = s.draw(1000, np.random.default_rng(0))
    scale = torch.tensor([1.0, 0.1, 1.0, 0.05, 0.05])

    def ident(f):
        return f / scale

    def noise(f):
        return torch.randn(f.shape[0], 5, generator=torch.Generator().manual_seed(int(f.sum())))

    assert factor_vae_score(ident, s, ident(ref), seed=0)["factor_vae_score"] == 1.0
    assert beta_vae_score(ident, s, seed=0)["beta_vae_score"] == 1.0
    assert factor_vae_score(noise, s, noise(ref), seed=0)["factor_vae_score"] < 0.4
    assert beta_vae_score(noise, s, seed=0)["beta_vae_score"] < 0.4
    collapsed = factor_vae_score(ident, s, torch.zeros(10, 5), seed=0)
    assert collapsed == {"factor_vae_score": 0.0, "factor_vae_active_dims": 0}


@pytest.mark.parametrize("k", range(5))
def test_fixed_factor_batch_holds_one_factor(k):
    f, x = fixed_factor_batch(k, 16, np.random.default_rng(k), size=32)
    assert f.shape == (16, 5) and x.shape == (16, 1, 32, 32)
    assert (f[:, k] == f[0, k]).all()
    others = [j for j in range(5) if j != k and N_VALUES[j] > 3]
    assert all(len(torch.unique(f[:, j])) > 1 for j in others)
    f2, _ = fixed_factor_batch(k, 4, np.random.default_rng(0), size=32, value_index=2)
    assert len(torch.unique(f2[:, k])) == 1
