"""Evaluation quantities (ENGINE_SPEC section 4) and their section 5 vectors."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vae_engine import train
from vae_engine.evaluate import bits_per_dim, evaluate, iwae_bound, log_mean_exp, mutual_information
from vae_engine.models.base import gaussian_kl_std_normal


def test_log_mean_exp_vector():
    assert float(log_mean_exp(torch.tensor([-1.0, -2.0, -3.0]))) == pytest.approx(
        -1.6910063, rel=1e-6)


def test_bits_per_dim_vector():
    assert bits_per_dim(3000.0, 3072) == pytest.approx(1.408882, rel=1e-6)


@pytest.mark.parametrize("shape", [(5,), (3, 7), (2, 3, 4)])
def test_analytic_kl_matches_torch(shape):
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(shape, generator=g, dtype=torch.float64)
    logvar = torch.randn(shape, generator=g, dtype=torch.float64)
    ref = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0))
    torch.testing.assert_close(gaussian_kl_std_normal(mu, logvar), ref, rtol=1e-10, atol=1e-12)


def test_mutual_information_is_zero_for_a_collapsed_posterior_and_bounded():
    g = torch.Generator().manual_seed(0)
    b, m = 512, 3
    mu, logvar = torch.zeros(b, m), torch.zeros(b, m)
    z = torch.randn(b, m, generator=g)
    assert abs(mutual_information(z, mu, logvar)) < 1e-5  # q(z|x) ignores x
    # Far-apart, sharp posteriors: I reaches its bound log B and never exceeds it.
    mu = torch.randn(b, m, generator=g) * 100
    logvar = torch.full((b, m), -10.0)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(b, m, generator=g)
    mi = mutual_information(z, mu, logvar)
    assert math.log(b) - 0.01 < mi <= math.log(b) + 1e-5


def test_mutual_information_matches_a_direct_computation_and_ignores_chunking():
    g = torch.Generator().manual_seed(1)
    b, m = 40, 2
    mu, logvar = torch.randn(b, m, generator=g), torch.randn(b, m, generator=g) * 0.3
    z = mu + torch.exp(0.5 * logvar) * torch.randn(b, m, generator=g)
    normal = torch.distributions.Normal(mu.unsqueeze(0), torch.exp(0.5 * logvar).unsqueeze(0))
    log_q = normal.log_prob(z.unsqueeze(1)).sum(-1)  # (B, B): log q(z_i | x_j)
    direct = (log_q.diagonal() - (torch.logsumexp(log_q, 1) - math.log(b))).mean()
    for chunk in (0, 1, 7, 40):
        for cols in (0, 1, 6, 13, 40):  # streamed q(z): column blocks of any size agree
            assert mutual_information(z, mu, logvar, row_chunk=chunk, col_chunk=cols) == \
                pytest.approx(float(direct), rel=1e-5)


def test_mi_summary_flags_saturation_and_warns(caplog):
    """Sharp, far-apart posteriors (seed 0, N = 300, M = 3): I reaches log N, flagged with a
    warning; a collapsed posterior (I = 0) is not flagged."""
    from vae_engine.evaluate.mi import mi_summary

    g = torch.Generator().manual_seed(0)
    n, m = 300, 3
    mu = torch.randn(n, m, generator=g) * 100
    logvar = torch.full((n, m), -10.0)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(n, m, generator=g)
    with caplog.at_level("WARNING"):
        s = mi_summary(z, mu, logvar, mean_rate=50.0)
    assert s["mi_saturated"] is True and s["mi_upper_bound"] == pytest.approx(math.log(n))
    assert s["marginal_kl"] == pytest.approx(50.0 - s["mutual_information"])
    assert "ceiling" in caplog.text
    flat = mi_summary(torch.randn(n, m, generator=g), torch.zeros(n, m), torch.zeros(n, m), 0.0)
    assert flat["mi_saturated"] is False and abs(flat["mutual_information"]) < 1e-5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import copy

    from tests.engine.conftest import TINY

    spec = copy.deepcopy(TINY)
    spec["train"]["epochs"] = 4
    spec["model"]["latent_dim"] = 8
    from vae_engine import load_checkpoint
    from vae_engine.io import LocalArtifacts

    res = train(spec, None, LocalArtifacts(tmp_path_factory.mktemp("ev")))
    return load_checkpoint(res.last_checkpoint), res


def test_iwae_is_above_elbo_and_grows_with_k(trained):
    ck, _ = trained
    from vae_engine.data import load_dataset

    x = load_dataset(ck.spec.dataset).x_test[:200]
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    summ = evaluate(ck.model, ck.likelihood, x, generator=g())
    # Seed 0, 200 examples, each k averaged over 4 seeds so the ordering is not noise.
    ks = [1, 10, 100, 1000]
    vals = []
    for k in ks:
        vals.append(sum(float(iwae_bound(ck.model, ck.likelihood, x, k,
                                         generator=torch.Generator().manual_seed(s)).mean())
                        for s in range(4)) / 4)
    assert vals[0] == pytest.approx(summ["elbo"], abs=0.5)  # k=1 is an ELBO estimate
    assert all(b > a for a, b in zip(vals, vals[1:], strict=False))
    assert vals[-1] > summ["elbo"]


def test_iwae_chunking_does_not_change_the_estimate(trained):
    ck, _ = trained
    x = torch.rand(10, 1, 8, 8).bernoulli(generator=torch.Generator().manual_seed(1))
    a = iwae_bound(ck.model, ck.likelihood, x, 50, chunk=7,
                   generator=torch.Generator().manual_seed(3))
    b = iwae_bound(ck.model, ck.likelihood, x, 50, chunk=7,
                   generator=torch.Generator().manual_seed(3))
    c = iwae_bound(ck.model, ck.likelihood, x, 50, chunk=5000,
                   generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b)
    assert (a - c).abs().mean() < 1.0  # same quantity, different Monte-Carlo draws


def test_summary_identities(trained):
    _, res = trained
    s = res.summary
    assert s["elbo"] == pytest.approx(-(s["rate"] + s["distortion"]), rel=1e-5)
    # MI and marginal KL are over the whole test split; their rate is over the same examples
    assert s["marginal_kl"] == pytest.approx(s["mi_rate"] - s["mutual_information"], rel=1e-6)
    assert s["mutual_information"] <= s["mi_upper_bound"] + 1e-6
    assert s["mi_upper_bound"] == pytest.approx(math.log(s["mi_n_examples"]))
    assert s["mi_saturated"] == (s["mutual_information"] > 0.95 * s["mi_upper_bound"])
    assert sum(s["kl_per_unit"]) == pytest.approx(s["rate"], rel=1e-4)
    assert s["active_units"] == sum(v > 0.01 for v in s["active_units_variance"])
    assert s["bits_per_dim"] == pytest.approx(-s["elbo"] / (64 * math.log(2)), rel=1e-6)


def test_hierarchical_summary_reports_top_group_mi_only():
    from vae_engine.likelihoods import build_likelihood
    from vae_engine.models import build_model
    from vae_engine.spec import parse_spec

    spec = parse_spec({"dataset": {"name": "digits"}, "model": {"arch": "hierarchical"}})
    torch.manual_seed(0)
    lik = build_likelihood(spec.likelihood)
    model = build_model(spec.model, (1, 8, 8), 1)
    x = torch.rand(32, 1, 8, 8).bernoulli(generator=torch.Generator().manual_seed(0))
    s = evaluate(model, lik, x, generator=torch.Generator().manual_seed(0))
    assert s["mutual_information"] is None and s["marginal_kl"] is None
    assert s["top_group_mi_n_examples"] == 32
    top = s["mutual_information_top_group"]
    assert -1e-5 <= top <= math.log(32) + 1e-5
    assert s["marginal_kl_top_group"] == pytest.approx(s["top_group_mi_rate"] - top, rel=1e-5)
    assert s["top_group_mi_rate"] == pytest.approx(s["kl_per_group"][0], rel=1e-4, abs=1e-6)
