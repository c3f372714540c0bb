"""Decoder likelihoods vs torch.distributions, closed forms and the ENGINE_SPEC section 5 vectors.

Comparisons run in float64 so the 1e-5 relative tolerance tests the formulas, not rounding;
one float32 case per likelihood checks the dtype the trainer actually uses. Random inputs come
from a fixed seed per test (``torch.Generator().manual_seed``).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import distributions as D

from vae_engine.errors import SpecError
from vae_engine.likelihoods import (
    LIKELIHOODS,
    build_likelihood,
    cb_log_norm,
    cb_mean,
    softclip,
)
from vae_engine.likelihoods.bernoulli import BernoulliLikelihood
from vae_engine.likelihoods.bernoulli_nn import NON_BINARY_WARNING
from vae_engine.likelihoods.continuous_bernoulli import ContinuousBernoulliLikelihood
from vae_engine.likelihoods.gaussian import GaussianLikelihood
from vae_engine.likelihoods.gaussian_nn import gaussian_nll

SHAPES = [(2, 1, 4, 4), (3, 3, 8, 8)]
RTOL = 1e-5
F64 = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _grey(shape, seed=0, dtype=F64) -> torch.Tensor:
    return torch.rand(shape, generator=_gen(seed), dtype=dtype)  # (B, C, H, W) in [0, 1)


def _logits(shape, seed=1, scale=3.0, dtype=F64) -> torch.Tensor:
    return scale * torch.randn(shape, generator=_gen(seed), dtype=dtype)  # within ±~13


def _sum_dims(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(1)  # (B,)


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = RTOL, atol: float = 0.0) -> None:
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


def test_registry_and_build():
    assert type(build_likelihood(BernoulliLikelihood())).__name__ == "Bernoulli"
    assert build_likelihood(ContinuousBernoulliLikelihood(eps=1e-4)).eps == 1e-4
    assert build_likelihood(GaussianLikelihood(sigma="learned_per_pixel")).params_per_dim == 2
    with pytest.raises(SpecError, match=f"valid: {', '.join(LIKELIHOODS.names())}$"):
        build_likelihood(SimpleNamespace(kind="poisson"))


# ----------------------------------------------------------------------------- Bernoulli


# nll == -torch.distributions.Bernoulli.log_prob: test_contracts.py, for every likelihood.


@pytest.mark.parametrize("shape", SHAPES)
def test_bernoulli_mean_is_the_sigmoid(shape):
    logits = _logits(shape)
    _close(build_likelihood(BernoulliLikelihood()).mean(logits), torch.sigmoid(logits))


def test_bernoulli_warns_for_grey_data_only():
    lik = build_likelihood(BernoulliLikelihood())
    assert lik.data_warnings(is_binary=True) == []
    (warning,) = lik.data_warnings(is_binary=False)
    assert warning == NON_BINARY_WARNING
    assert "binarize" in warning and "continuous_bernoulli" in warning
    assert "Loaiza-Ganem" in warning


# ---------------------------------------------------------------- continuous Bernoulli


@pytest.mark.parametrize(
    ("lam", "expected"),
    [(0.1, 1.010338559), (0.25, 0.787195008), (0.5, 0.693147181)],
)
def test_cb_log_norm_spec_vectors_and_symmetry(lam, expected):
    lams = torch.tensor([lam, 1.0 - lam], dtype=F64)
    _close(cb_log_norm(lams), torch.tensor([expected, expected], dtype=F64))


def _closed_form_log_norm(lam: float) -> float:
    """log(2 artanh(1-2λ)/(1-2λ)) directly; float64 is accurate down to |1-2λ| ~ 1e-6."""
    y = 1.0 - 2.0 * lam
    return math.log(2.0) if y == 0 else math.log(2.0 * math.atanh(y) / y)


@pytest.mark.parametrize(
    "lam", [1e-6, 0.01, 0.3, 0.4489, 0.45, 0.4511, 0.499, 0.4995, 0.5, 0.5005, 0.501, 0.5011,
            0.5489, 0.55, 0.5511, 0.7, 1 - 1e-6]
)
def test_cb_log_norm_matches_closed_form_and_torch(lam):
    # Both sides of both band edges |λ-0.5| = 0.05: the Taylor and exact branches must agree.
    t = torch.tensor([lam], dtype=F64)
    _close(cb_log_norm(t), torch.tensor([_closed_form_log_norm(lam)], dtype=F64))
    _close(cb_log_norm(t), D.ContinuousBernoulli(probs=t)._cont_bern_log_norm())


def test_cb_log_norm_continuous_across_band_edges():
    for edge in (0.45, 0.55):
        t = torch.tensor([edge - 1e-9, edge, edge + 1e-9], dtype=F64)
        vals = cb_log_norm(t)
        assert (vals.max() - vals.min()).item() < 1e-8


# A dense grid around 0.5 in float32: 20001 points over |λ-0.5| <= 0.1, i.e. every band edge
# of this and PyTorch's implementation, plus λ = 0.5 ± k·1e-5.
_DENSE = torch.cat([torch.linspace(0.4, 0.6, 20001), 0.5 + torch.arange(-300, 301) * 1e-5])


def test_cb_log_norm_float32_accurate_near_half():
    """≤ 1e-6 absolute against float64 (PyTorch's form is off by up to 1.35e-5 here)."""
    lam = _DENSE.float()
    err = (cb_log_norm(lam).double() - cb_log_norm(lam.double())).abs().max().item()
    assert err <= 1e-6
    torch_err = (D.ContinuousBernoulli(probs=lam)._cont_bern_log_norm().double()
                 - cb_log_norm(lam.double())).abs().max().item()
    assert torch_err > 1e-6  # the grid does reach the region the fix is for


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_cb_log_norm_gradient_sign(dtype):
    """log C grows with |λ-0.5|: d log C / dλ has the sign of λ-0.5 everywhere on the grid
    (PyTorch's float32 form gets it wrong for 0.001 < |λ-0.5| < 0.003)."""
    lam = _DENSE.to(dtype).clone().requires_grad_(True)
    cb_log_norm(lam).sum().backward()
    d = lam.detach() - 0.5
    nz = d.abs() > 1e-7
    assert (torch.sign(lam.grad[nz]) == torch.sign(d[nz])).all()
    # and the gradient's size is right: 8d/3 + ... against float64 autograd on the series
    want = 8 * d / 3 + 416 * d**3 / 45
    far = nz & (d.abs() < 0.01)
    _close(lam.grad[far].double(), want[far].double(), rtol=2e-3, atol=0.0)


# nll == -ContinuousBernoulli.log_prob (Taylor band included): test_contracts.py.


@pytest.mark.parametrize("shape", SHAPES)
def test_cb_mean_matches_torch_and_is_not_lambda(shape):
    lik = build_likelihood(ContinuousBernoulliLikelihood())
    logits = _logits(shape).clamp(-10, 10)
    logits[0, 0, 0, :3] = torch.tensor([0.0, 1e-3, -2e-3], dtype=F64)
    mean = lik.mean(logits)
    _close(mean, D.ContinuousBernoulli(logits=logits).mean)
    assert mean.shape == shape
    assert (mean >= 0).all() and (mean <= 1).all()
    lam = torch.sigmoid(logits)
    far = (lam - 0.5).abs() > 0.1
    assert ((mean - lam).abs()[far] > 1e-3).all()  # E[x] != λ away from 0.5


def test_cb_mean_float32_accurate_near_half():
    # PyTorch's exact branch loses ~3e-3 at λ = 0.499 in float32 (cancellation); ours must not.
    lams = torch.tensor([0.4, 0.449, 0.45, 0.451, 0.499, 0.4995, 0.5, 0.501, 0.55, 0.6, 0.9])
    exact64 = D.ContinuousBernoulli(probs=lams.double()).mean
    _close(cb_mean(lams).double(), exact64, rtol=0.0, atol=2e-6)
    _close(cb_mean(lams.double()), exact64, rtol=1e-8, atol=0.0)  # Taylor error < 2e-9


def test_cb_mean_limit_at_half_and_symmetry():
    lams = torch.tensor([0.5, 0.4995, 0.5005, 0.2, 0.8], dtype=F64)
    m = cb_mean(lams)
    _close(m[0], torch.tensor(0.5, dtype=F64))
    _close(m[1] + m[2], torch.tensor(1.0, dtype=F64))  # E[x|1-λ] = 1 - E[x|λ]
    _close(m[3] + m[4], torch.tensor(1.0, dtype=F64))


@pytest.mark.parametrize("logit", [0.0, 2e-3, -2e-3, 4e-3, 0.2, -0.2, 30.0, -30.0, 200.0])
def test_cb_gradients_finite(logit):
    # 0 -> λ = 0.5 exactly; ±2e-3, 4e-3 and ±0.2 straddle the log-norm and mean band edges;
    # ±30, 200 are past the clamp.
    lik = build_likelihood(ContinuousBernoulliLikelihood())
    logits = torch.full((2, 1, 2, 2), logit, requires_grad=True)
    x = torch.tensor([0.0, 0.3, 0.7, 1.0]).reshape(1, 1, 2, 2).expand(2, 1, 2, 2)
    (lik.nll(logits, x).sum() + lik.mean(logits).sum()).backward()
    assert torch.isfinite(logits.grad).all()
    assert torch.isfinite(lik.nll(logits.detach(), x)).all()


def test_cb_eps_from_spec_clamps_normaliser():
    eps = 1e-3
    lik = build_likelihood(ContinuousBernoulliLikelihood(eps=eps))
    logits = torch.tensor([50.0], dtype=F64).reshape(1, 1, 1, 1)
    x = torch.ones_like(logits)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x)
    expected = bce - cb_log_norm(torch.tensor(1 - eps, dtype=F64))
    _close(lik.nll(logits, x), expected.reshape(1))


# ------------------------------------------------------------------------------ Gaussian


def _gauss(mode: str, **kw):
    return build_likelihood(GaussianLikelihood(sigma=mode, **kw)).to(F64)


def _normal_ref(mu, sigma, x) -> torch.Tensor:
    return -_sum_dims(D.Normal(mu, sigma).log_prob(x))  # (B,)


def test_softclip_spec_vector():
    _close(softclip(torch.tensor(0.0, dtype=F64), -6.0), torch.tensor(0.0024757, dtype=F64))
    big = torch.tensor(3.0, dtype=F64)
    assert softclip(big, -6.0) > big  # not the identity above the floor
    assert softclip(torch.tensor(-10.0, dtype=F64), -6.0) > -6.0  # smooth floor...
    assert softclip(torch.tensor(-50.0, dtype=F64), -6.0) >= -6.0  # ...never crossed


@pytest.mark.parametrize("sigma_value", [1.0, 0.1])
def test_gaussian_fixed_has_no_parameters(sigma_value):
    # nll == -Normal(mu, sigma).log_prob: test_contracts.py.
    lik = _gauss("fixed", sigma_value=sigma_value)
    assert lik.metrics() == {"sigma": sigma_value}
    assert list(lik.parameters()) == [] and dict(lik.state_dict()) == {}


@pytest.mark.parametrize("shape", SHAPES)
def test_gaussian_learned_shared(shape):
    lik = _gauss("learned_shared")
    (param,) = list(lik.parameters())
    assert param.shape == () and param.item() == 0.0
    mu, x = _grey(shape, seed=3), _grey(shape)
    sigma0 = math.exp(softclip(torch.tensor(0.0, dtype=F64), -6.0).item())
    _close(lik.nll(mu, x), _normal_ref(mu, sigma0, x))
    _close(torch.tensor(float(lik.metrics()["sigma"])), torch.tensor(sigma0))
    with torch.no_grad():
        param.fill_(-1.3)
    sigma = math.exp(-6.0 + math.log1p(math.exp(-1.3 + 6.0)))
    nll = lik.nll(mu, x)
    _close(nll, _normal_ref(mu, sigma, x))
    nll.sum().backward()
    assert param.grad is not None and torch.isfinite(param.grad)


def _optimal_log_sigma(mu, x, dims) -> torch.Tensor:
    """Unclipped closed-form minimiser: log sqrt(mean (x-μ)²)."""
    return 0.5 * ((x - mu) ** 2).mean(dim=dims).log()


@pytest.mark.parametrize("shape", SHAPES)
def test_gaussian_optimal_shared_train(shape):
    lik = _gauss("optimal_shared").train()
    mu, x = _grey(shape, seed=3), _grey(shape)
    log_star = _optimal_log_sigma(mu, x, (0, 1, 2, 3))  # ()
    sigma = softclip(log_star, -6.0).exp()
    _close(lik.nll(mu, x), _normal_ref(mu, sigma, x))
    _close(lik.log_sigma_estimate, softclip(log_star, -6.0))
    _close(torch.tensor(float(lik.metrics()["sigma"]), dtype=F64), sigma)
    assert list(lik.parameters()) == [] and list(lik.state_dict()) == ["log_sigma_estimate"]


@pytest.mark.parametrize("shape", SHAPES)
def test_gaussian_optimal_shared_eval_uses_training_estimate(shape):
    lik = _gauss("optimal_shared")
    mu_tr, x_tr = _grey(shape, seed=3), _grey(shape)
    lik.train().nll(mu_tr, x_tr)
    sigma_tr = softclip(_optimal_log_sigma(mu_tr, x_tr, (0, 1, 2, 3)), -6.0).exp()

    mu_te, x_te = _grey(shape, seed=4), 0.5 * _grey(shape, seed=5)  # a different error scale
    lik.eval()
    _close(lik.nll(mu_te, x_te), _normal_ref(mu_te, sigma_tr, x_te))
    _close(lik.log_sigma_estimate.exp(), sigma_tr)  # eval does not update the estimate
    # Per example, the eval density must not depend on the rest of the batch.
    _close(lik.nll(mu_te[:1], x_te[:1]), lik.nll(mu_te, x_te)[:1])

    # The estimate travels in the state dict (checkpoints) and evaluates the same way.
    fresh = _gauss("optimal_shared")
    fresh.load_state_dict(lik.state_dict())
    fresh.eval()
    _close(fresh.nll(mu_te, x_te), lik.nll(mu_te, x_te))


@pytest.mark.parametrize("shape", SHAPES)
def test_gaussian_optimal_per_image(shape):
    lik = _gauss("optimal_per_image")
    mu, x = _grey(shape, seed=3), _grey(shape)
    sigma = softclip(_optimal_log_sigma(mu, x, (1, 2, 3)), -6.0).exp()  # (B,)
    ref = _normal_ref(mu, sigma[:, None, None, None].expand(shape), x)
    for mode in (lik.train(), lik.eval()):  # same in both: a function of x and μ
        _close(mode.nll(mu, x), ref)
    _close(torch.tensor(float(lik.metrics()["sigma"]), dtype=F64), sigma.mean())


@pytest.mark.parametrize("shape", SHAPES)
def test_gaussian_learned_per_pixel(shape):
    lik = _gauss("learned_per_pixel")
    b, c, h, w = shape
    mu, x = _grey(shape, seed=3), _grey(shape)
    raw = torch.randn(shape, generator=_gen(6), dtype=F64)
    params = torch.cat([mu, raw], dim=1)  # (B, 2C, H, W)
    sigma = softclip(raw, -6.0).exp()
    _close(lik.nll(params, x), _normal_ref(mu, sigma, x))
    _close(lik.mean(params), mu.clamp(0, 1))
    _close(torch.tensor(float(lik.metrics()["sigma"]), dtype=F64), sigma.mean())
    with pytest.raises(ValueError, match="decoder channels"):
        lik.nll(mu, x)


@pytest.mark.parametrize("dims", [(0, 1, 2, 3), (1, 2, 3)], ids=["shared", "per_image"])
def test_optimal_sigma_is_the_nll_minimiser(dims):
    mu, x = _grey((3, 3, 8, 8), seed=3), _grey((3, 3, 8, 8))
    log_star = _optimal_log_sigma(mu, x, dims).detach().requires_grad_(True)
    shape = log_star.shape + (1,) * (4 - log_star.dim())
    total = gaussian_nll(x, mu, log_star.reshape(shape)).sum()
    (grad,) = torch.autograd.grad(total, log_star)
    assert grad.abs().max().item() < 1e-9  # d NLL / d log σ = N - Σ(x-μ)²/σ² = 0 at σ*
    for step in (-0.01, 0.01):  # and it is a minimum
        moved = gaussian_nll(x, mu, (log_star + step).reshape(shape)).sum()
        assert moved.item() > total.item()


def test_optimal_sigma_perfect_reconstruction_is_finite():
    for mode in ("optimal_shared", "optimal_per_image"):
        lik = _gauss(mode)
        mu = _grey((2, 1, 4, 4)).requires_grad_(True)
        nll = lik.nll(mu, mu.detach().clone())
        nll.sum().backward()
        assert torch.isfinite(nll).all() and torch.isfinite(mu.grad).all()
        assert lik.metrics()["sigma"] == pytest.approx(math.exp(softclip(torch.tensor(-50.0), -6)))


@pytest.mark.parametrize(
    "mode", ["fixed", "learned_shared", "optimal_shared", "optimal_per_image", "learned_per_pixel"]
)
def test_gaussian_float32_and_mean_clamped(mode):
    lik = build_likelihood(GaussianLikelihood(sigma=mode))
    shape = (3, 3, 8, 8)
    mu = 1.4 * _grey(shape, seed=3, dtype=torch.float32) - 0.2  # outside [0, 1] on purpose
    x = _grey(shape, dtype=torch.float32)
    params = torch.cat([mu, torch.zeros_like(mu)], 1) if mode == "learned_per_pixel" else mu
    lik64 = build_likelihood(GaussianLikelihood(sigma=mode)).to(F64)
    _close(lik.nll(params, x), lik64.nll(params.double(), x.double()).float())
    mean = lik.mean(params)
    assert mean.shape == shape and mean.min() >= 0 and mean.max() <= 1
    assert lik.data_warnings(is_binary=False) == []
