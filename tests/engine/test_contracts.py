"""Contracts every registered component must keep, one generic test per property.

Parametrized over the registries (and each config's ``examples``), so a new component is
checked the moment it is registered, with no list here to update.
"""

from __future__ import annotations

import json

import pytest
import torch

from vae_engine.data import DATASETS, load_dataset
from vae_engine.kl import SCHEMES, SchemeContext, build_scheme
from vae_engine.likelihoods import LIKELIHOODS, build_likelihood
from vae_engine.registry import Registry

CTX = SchemeContext(data_dims=64, latent_dims=8, total_steps=100, steps_per_epoch=10)
SHAPES = [(2, 1, 4, 4), (3, 3, 8, 8)]


def _cases(registry: Registry, keep=lambda config: True) -> list:
    """One pytest param per (component, example), id ``name[i]``."""
    return [
        pytest.param(e.config, example, id=f"{e.name}[{i}]")
        for e in registry.entries() if keep(e.config)
        for i, example in enumerate(e.config.examples)
    ]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- KL schemes


@pytest.mark.parametrize(("config", "example"), _cases(SCHEMES, lambda c: c.stateful))
def test_stateful_scheme_state_round_trips_and_resumes_exactly(config, example):
    # 40 steps of (rate, distortion) in [0, 100), seed 0; the state crosses a JSON round trip
    # as in a checkpoint, then both copies must agree bit for bit.
    seq = (torch.rand(40, 2, generator=_gen(0)) * 100).tolist()
    spec = config(**example)
    a = build_scheme(spec, CTX)
    for t, (r, d) in enumerate(seq[:20]):
        a.update(t, {"rate": r, "rate_term": r, "distortion": d})
    saved = json.loads(json.dumps(a.state_dict()))
    b = build_scheme(spec, CTX)
    assert b.state_dict() != saved  # the controller moved, so the test can fail
    b.load_state_dict(saved)
    for t, (r, d) in enumerate(seq[20:], start=20):
        stats = {"rate": r, "rate_term": r, "distortion": d}
        a.update(t, stats)
        b.update(t, stats)
        assert b.weight(t + 1) == a.weight(t + 1)
        la = a.objective(torch.tensor(d), torch.tensor(r), t + 1)
        lb = b.objective(torch.tensor(d), torch.tensor(r), t + 1)
        assert la[0].item() == lb[0].item() and la[1] == lb[1]


@pytest.mark.parametrize(("config", "example"), _cases(SCHEMES, lambda c: not c.stateful))
def test_stateless_scheme_is_a_function_of_the_step(config, example):
    # STYLE rule 5: a schedule has no state, so updates change nothing.
    s = build_scheme(config(**example), CTX)
    before = [s.weight(t) for t in range(0, 100, 7)]
    for t in range(10):
        s.update(t, {"rate": 5.0, "rate_term": 5.0, "distortion": 50.0})
    assert s.state_dict() == {}
    assert [s.weight(t) for t in range(0, 100, 7)] == before


# --------------------------------------------------------------------------- likelihoods


def _reference_cases() -> list:
    """The likelihood examples that have a torch.distributions counterpart (the Gaussian's
    fitted-sigma modes have none: their sigma depends on the data being scored)."""
    out = []
    for case in _cases(LIKELIHOODS):
        config, example = case.values
        lik = build_likelihood(config(**example))
        if lik.reference(torch.zeros(1, lik.params_per_dim, 1, 1)) is not None:
            out.append(case)
    return out


@pytest.mark.parametrize(("config", "example"), _reference_cases())
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_likelihood_matches_torch_distributions(config, example, shape, dtype):
    # Random logits/means N(0, 2^2) clamped to |.| <= 10 (inside every clamp), data in [0, 1]
    # (binary where the reference is a discrete distribution); rel. tol. 1e-5.
    lik = build_likelihood(config(**example)).to(dtype)
    c = shape[1]
    params = (torch.randn(shape[0], lik.params_per_dim * c, *shape[2:], generator=_gen(1),
                          dtype=dtype) * 2).clamp(-10, 10)  # (B, P*C, H, W)
    params[0, 0, 0, :2] = torch.tensor([0.0, 1e-3], dtype=dtype)  # CB's Taylor band
    x = torch.rand(shape, generator=_gen(2), dtype=dtype)  # (B, C, H, W)
    ref = lik.reference(params)
    if isinstance(ref, torch.distributions.Bernoulli):
        x = torch.bernoulli(x, generator=_gen(3))
    nll = lik.nll(params, x)
    assert nll.shape == (shape[0],) and nll.dtype == dtype
    torch.testing.assert_close(nll, -ref.log_prob(x).flatten(1).sum(1), rtol=1e-5, atol=0.0)


@pytest.mark.parametrize(("config", "example"), _cases(LIKELIHOODS))
def test_likelihood_mean_is_an_image(config, example):
    lik = build_likelihood(config(**example))
    params = torch.randn(2, lik.params_per_dim, 4, 4, generator=_gen(4)) * 5
    mean = lik.mean(params)
    assert mean.shape == (2, 1, 4, 4)
    assert mean.min() >= 0.0 and mean.max() <= 1.0


# --------------------------------------------------------------------------- datasets


@pytest.mark.parametrize(("config", "example"), _cases(DATASETS))
def test_dataset_yields_its_declared_shape_and_range(config, example):
    spec = config(**example)
    b = load_dataset(spec)
    assert b.name == spec.name and not b.dynamic_binarize
    side = spec.side()
    for x in (b.x_train, b.x_test):
        assert x.dtype == torch.float32 and x.ndim == 4 and len(x) > 0
        assert tuple(x.shape[1:]) == b.shape
        if side is not None:
            assert tuple(x.shape[2:]) == (side, side)
        assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.5
    for f, x in ((b.factors_train, b.x_train), (b.factors_test, b.x_test)):
        if f is not None:
            assert f.shape == (len(x), len(b.factor_names))


def test_every_component_has_an_example_or_says_why_not():
    # A component without examples escapes the contracts above: only allowed for datasets
    # that need a user's file (their loader is tested with files in test_data.py).
    for registry in (SCHEMES, LIKELIHOODS, DATASETS):
        for e in registry.entries():
            assert e.config.examples or e.config.user_file_fields, e.name


# --------------------------------------------------------------------------- metrics


@pytest.fixture(scope="module")
def metric_contexts():
    """Two small settings: shapes (generative factors, a sampler) and mnist5k (a label);
    an untrained model of each, seed 0."""
    from vae_engine.evaluate.metrics import MetricContext
    from vae_engine.models import build_model
    from vae_engine.spec import parse_spec

    out = []
    for dataset in ({"name": "shapes", "size": 32, "n_train": 64, "n_test": 64},
                    {"name": "mnist5k"}):
        spec = parse_spec({"dataset": dataset, "model": {"arch": "mlp", "latent_dim": 3,
                                                         "hidden": [16]}})
        data = load_dataset(spec.dataset)
        torch.manual_seed(0)
        lik = build_likelihood(spec.likelihood)
        model = build_model(spec.model, data.shape, 1).eval()
        with torch.no_grad():
            codes = model.encode(data.x_test)[0]
        out.append(MetricContext(model, lik, data, codes, 0, 8, spec.dataset))
    return out


def _metric_cases() -> list:
    from vae_engine.evaluate.metrics import METRICS

    return [pytest.param(e.name, id=e.name) for e in METRICS.entries()]


@pytest.mark.parametrize("name", _metric_cases())
def test_metric_writes_its_declared_keys(name, metric_contexts):
    # Every metric applies to one of the two settings, and there writes every key it
    # declares (the catalogue lists the same keys), as finite floats.
    from vae_engine.catalogue import catalogue
    from vae_engine.evaluate.metrics import METRICS, run_metrics

    config = METRICS.config(name)
    assert config.keys and config.paper and config.one_line()
    listed = {m["name"]: m for m in catalogue()["metrics"]}[name]
    assert listed["keys"] == list(config.keys)
    ctxs = [c for c in metric_contexts if config.applies(c.data)]
    assert ctxs, f"{name} applies to neither shapes nor mnist5k"
    small = {"name": name, **({"n_train": 10, "n_eval": 5} if "n_train" in config.model_fields
                              else {})}
    out = run_metrics([small], ctxs[0])
    for key in config.keys:
        assert isinstance(out[key], float) and out[key] == out[key], (name, key)
