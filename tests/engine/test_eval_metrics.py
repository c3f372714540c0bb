"""The final evaluation's extra metrics, the honest-bound flags and the cheap intermediate
evaluations, through ``train`` (a few steps each; the numbers are not the point, the keys
and flags are)."""

from __future__ import annotations

import math

import pytest
import torch

from vae_engine import train
from vae_engine.evaluate.honesty import bound_status, data_kind, dequantize
from vae_engine.likelihoods import LIKELIHOODS, build_likelihood

SHAPES = {
    "dataset": {"name": "shapes", "size": 32, "n_train": 256, "n_test": 200},
    "model": {"arch": "conv", "latent_dim": 4, "channels": [8, 16], "hidden": 32},
    "likelihood": {"kind": "bernoulli"},
    "optim": {"batch_size": 64},
    "train": {"epochs": 2, "eval_every_epochs": 1, "checkpoint_every_epochs": 0,
              "device": "cpu"},
    "eval": {"iwae_k": 20, "max_examples": 100, "intermediate_iwae_k": 3,
             "intermediate_iwae_examples": 10, "n_samples": 4,
             "metrics": ["disentanglement", {"name": "factor_vae", "n_train": 20, "n_eval": 10},
                         {"name": "beta_vae", "n_train": 20, "n_eval": 10}]},
}
MNIST = {
    "dataset": {"name": "mnist5k"},
    "model": {"arch": "mlp", "latent_dim": 4, "hidden": [32]},
    "likelihood": {"kind": "continuous_bernoulli"},
    "train": {"max_steps": 3, "eval_every_epochs": 0, "checkpoint_every_epochs": 0,
              "device": "cpu"},
    "eval": {"iwae_k": 2, "max_examples": 50, "n_samples": 4},
}


class _Evals:
    def __init__(self):
        self.summaries = []

    def __call__(self, sink):
        orig = sink.log_eval

        def log_eval(step, summary):
            self.summaries.append(dict(summary))
            orig(step, summary)

        sink.log_eval = log_eval
        return sink


@pytest.fixture(scope="module")
def shapes_run():
    from vae_engine.io import ListSink

    grab = _Evals()
    result = train(SHAPES, grab(ListSink()))
    return result.summary, grab.summaries


def test_shapes_summary_carries_every_disentanglement_metric(shapes_run):
    s, _ = shapes_run
    for key in ("mig", "sap", "dci_disentanglement", "dci_completeness", "dci_informativeness",
                "factor_vae_score", "beta_vae_score"):
        assert isinstance(s[key], float) and (math.isnan(s[key]) or 0 <= s[key] <= 1), key
    assert s["factor_names"] == ["shape", "scale", "orientation", "pos_x", "pos_y"]
    assert s["bound"] is True and "binary" in s["bound_reason"]
    assert s["evaluation"] == "final" and s["iwae_k"] == 20 and s["iwae_n_examples"] == 100


def test_intermediate_evaluations_are_cheap(shapes_run):
    _, evals = shapes_run
    first = evals[0]
    assert first["evaluation"] == "intermediate"
    assert first["iwae_k"] == 3 and first["iwae_n_examples"] == 10
    assert "mig" not in first and "factor_vae_score" not in first
    assert first["mi_n_examples"] == 200  # MI over the whole test split, not max_examples
    assert "mi_saturated" in first and "mi_upper_bound" in first


def test_mnist_summary_carries_fd_lenet_and_says_it_is_no_bound():
    s = train(MNIST).summary
    assert s["fd_lenet"] > 0 and s["fd_lenet_recon"] > 0
    assert s["fd_lenet_classifier_accuracy"] >= 0.98
    assert "mig" not in s  # a label is not a generative factor
    assert s["bound"] is False and "dequantize" in s["bound_reason"]


def test_dequantized_run_is_a_bound_in_discrete_units():
    spec = {**MNIST, "likelihood": {"kind": "gaussian", "sigma": "learned_shared",
                                    "dequantize": True}, "eval": {**MNIST["eval"],
                                                                  "metrics": []}}
    s = train(spec).summary
    assert s["bound"] is True and s["dequantized"] is True
    n = 784
    assert s["bits_per_dim"] == pytest.approx((-s["elbo"] + n * math.log(256)) / (n * math.log(2)))
    assert s["bits_per_dim"] > 0  # a discrete log-likelihood is never positive


def test_discretized_logistic_is_a_bound_on_8bit_data():
    spec = {**MNIST, "likelihood": {"kind": "discretized_logistic"},
            "eval": {**MNIST["eval"], "metrics": []}}
    s = train(spec).summary
    assert s["bound"] is True and s["bits_per_dim"] > 0


@pytest.mark.parametrize(
    ("likelihood", "kind", "deq", "bound"),
    [({"kind": "gaussian", "sigma": "optimal_per_image"}, "continuous", False, False),
     ({"kind": "gaussian", "sigma": "optimal_shared"}, "continuous", False, True),
     ({"kind": "gaussian", "sigma": "learned_per_pixel"}, "8bit", False, False),
     ({"kind": "gaussian"}, "8bit", True, True),
     ({"kind": "continuous_bernoulli"}, "binary", False, False),
     ({"kind": "bernoulli"}, "8bit", False, False),
     ({"kind": "bernoulli"}, "binary", False, True),
     ({"kind": "discretized_logistic"}, "8bit", False, True),
     ({"kind": "discretized_logistic"}, "continuous", False, False)],
)
def test_bound_status(likelihood, kind, deq, bound):
    lik = build_likelihood(LIKELIHOODS.config(likelihood["kind"])(**likelihood))
    ok, reason = bound_status(lik, kind, deq)
    assert ok is bound and reason


def test_data_kind_and_dequantize():
    g = torch.Generator().manual_seed(0)
    x8 = torch.randint(0, 256, (4, 1, 5, 5), generator=g) / 255.0
    assert data_kind(x8) == "8bit"
    assert data_kind((x8 > 0.5).float()) == "binary"
    assert data_kind(x8 + 1e-3) == "continuous"
    xd = dequantize(x8, g)
    assert (xd >= 0).all() and (xd < 1).all()
    assert torch.equal((xd * 256).floor(), (x8 * 255).round())  # stays in its own bin


def test_discretized_logistic_sums_to_one_over_the_256_values():
    lik = build_likelihood(LIKELIHOODS.config("discretized_logistic")())
    params = torch.randn(3, 2, 2, 2, generator=torch.Generator().manual_seed(0)) * 2
    values = torch.arange(256) / 255.0
    total = torch.stack([lik.log_prob(params, torch.full((3, 1, 2, 2), float(v)))
                         for v in values]).exp().sum(0)
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-5)


def test_npz_generative_factors(tmp_path):
    """An npz with factors_train/factors_test/factor_names loads as generative factors:
    discrete when <= 100 distinct values, continuous otherwise."""
    import numpy as np

    from vae_engine.data.npz import read_npz
    from vae_engine.evaluate.metrics import resolve

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (150, 8, 8), dtype=np.uint8)
    f_tr = np.stack([rng.integers(0, 3, 120), rng.uniform(size=120)], 1)  # 150 sizes > 100
    f_te = np.stack([rng.integers(0, 3, 30), rng.uniform(size=30)], 1)
    path = tmp_path / "f.npz"
    np.savez(path, x_train=x[:120], x_test=x[120:], factors_train=f_tr, factors_test=f_te,
             factor_names=np.array(["colour", "size"]))
    b = read_npz(path)
    assert b.factors_generative and b.factor_names == ["colour", "size"]
    assert b.factor_discrete == [True, False]
    assert resolve(None, b) == ["disentanglement"]  # no sampler, no label
