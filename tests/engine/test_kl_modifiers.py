"""Rate modifiers and estimators: free bits, NVAE balancing, batch-statistics KL, and how
``rate_term`` composes them (ENGINE_SPEC 2.8, 2.10, 2.11; rel. tol. 1e-5)."""

from __future__ import annotations

import pytest
import torch

from vae_engine.kl import SchemeContext, build_scheme, rate_term
from vae_engine.kl.balancing import alpha_from_scales, balancing_coefficients, nvae_alpha
from vae_engine.kl.batch_stats import batch_stats_kl
from vae_engine.kl.free_bits import free_bits_terms
from vae_engine.models.base import ModelOutput
from vae_engine.spec import KLSpec

REL = 1e-5


def output(kl: torch.Tensor, sizes=None, scales=None, z=None) -> ModelOutput:
    b, m = kl.shape
    z = torch.zeros(b, m) if z is None else z
    return ModelOutput(torch.zeros(b, 1, 2, 2), z, z, z, kl, sizes, scales)


def kl_spec(**kw) -> KLSpec:
    return KLSpec.model_validate(kw)


def scheme_for(spec: KLSpec, total: int = 100):
    return build_scheme(spec.schedule, SchemeContext(4, 6, total, 10))


# --------------------------------------------------------------------------- batch statistics


def test_batch_stats_vector():
    z = torch.tensor([[0.0, 1.0], [2.0, 1.0], [1.0, 4.0]])
    assert batch_stats_kl(z).tolist() == pytest.approx([0.536066, 2.153426], rel=REL)


@pytest.mark.parametrize("shape", [(5, 3), (64, 16), (1000, 2)])
def test_batch_stats_matches_torch_distributions(shape):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(shape, generator=g, dtype=torch.float64) * 1.7 + 0.3
    q = torch.distributions.Normal(z.mean(0), z.var(0, unbiased=False).sqrt())
    p = torch.distributions.Normal(torch.zeros(shape[1]), torch.ones(shape[1]))
    want = torch.distributions.kl_divergence(q, p)
    assert torch.allclose(batch_stats_kl(z), want, rtol=1e-6)


def test_batch_stats_rate_term_and_gradient():
    z = torch.tensor([[0.0, 1.0], [2.0, 1.0], [1.0, 4.0]], requires_grad=True)
    out = output(torch.full((3, 2), 9.0), z=z)
    r, logs = rate_term(out, kl_spec(estimator="batch_stats"), scheme_for(kl_spec()), 0)
    assert float(r.detach()) == pytest.approx(0.536066 + 2.153426, rel=REL)
    assert logs["kl_batch_stats"] == pytest.approx(float(r.detach()))
    r.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


# --------------------------------------------------------------------------- free bits


KL = torch.tensor([[0.1, 0.5, 2.0, 0.0], [0.3, 0.1, 1.0, 0.2]])  # (B=2, M=4)


@pytest.mark.parametrize(
    ("group", "average", "want"),
    [
        # sum_j max(.25, mean_b KL_bj): means [.2, .3, 1.5, .1]
        ("per_dim", "batch", 0.25 + 0.3 + 1.5 + 0.25),
        # mean_b sum_j max(.25, KL_bj)
        ("per_dim", "per_sample", ((0.25 + 0.5 + 2.0 + 0.25) + (0.3 + 0.25 + 1.0 + 0.25)) / 2),
        # groups [0, 1] and [2, 3]: group sums (.6, 2.0) and (.4, 1.2); lambda 1
        ("per_group", "batch", 1.0 + 1.6),
        ("per_group", "per_sample", ((1.0 + 2.0) + (1.0 + 1.2)) / 2),
    ],
)
def test_free_bits_variants(group, average, want):
    lam = 0.25 if group == "per_dim" else 1.0
    terms, frac = free_bits_terms(KL, (2, 2), lam, group, average)
    assert float(terms.sum()) == pytest.approx(want, rel=REL)
    assert terms.shape == (2,)
    assert 0.0 < frac < 1.0


def test_free_bits_gradient_only_above_lambda():
    kl = KL.clone().requires_grad_(True)
    terms, _ = free_bits_terms(kl, None, 0.25, "per_dim", "batch")
    terms.sum().backward()
    assert kl.grad.tolist() == [[0.0, 0.5, 0.5, 0.0], [0.0, 0.5, 0.5, 0.0]]


def test_free_bits_never_changes_the_reported_rate():
    out = output(KL.clone())
    spec = kl_spec(free_bits={"lambda": 5.0})
    r, logs = rate_term(out, spec, scheme_for(spec), 0)
    assert float(r) == pytest.approx(20.0)  # every unit clamped to 5
    assert logs["rate_term"] == pytest.approx(20.0) and logs["free_bits_clamped"] == 1.0
    assert float(out.kl.sum(1).mean()) == pytest.approx(2.1)  # what the trainer reports


def test_plain_rate_term_is_the_analytic_sum():
    spec = kl_spec()
    r, logs = rate_term(output(KL), spec, scheme_for(spec), 0)
    assert float(r) == pytest.approx(2.1) and logs == {}


# --------------------------------------------------------------------------- NVAE balancing


def test_nvae_alpha_vector():
    assert nvae_alpha([4, 2], "square") == pytest.approx([1, 1, 2, 2, 2, 2], rel=REL)


@pytest.mark.parametrize(
    ("fun", "want"),
    [("equal", [1, 1, 1, 1, 1, 1]), ("linear", [1, 1, 2, 2, 2, 2]),
     ("sqrt", [1, 1] + [2**0.5] * 4)],
)
def test_nvae_alpha_other_functions(fun, want):
    assert nvae_alpha([4, 2], fun) == pytest.approx(want, rel=REL)


def test_nvae_alpha_three_scales():
    # groups per scale [2, 2, 1] (largest first): scales 0:1 group, 1:2, 2:2
    # square: 1/1, 4/2, 4/2, 16/2, 16/2 -> min 1
    assert alpha_from_scales((0, 1, 1, 2, 2), "square") == pytest.approx([1, 2, 2, 8, 8])
    assert nvae_alpha([2, 2, 1], "square") == pytest.approx([1, 2, 2, 8, 8])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_balancing_coefficients_formula(seed):
    g = torch.Generator().manual_seed(seed)
    kl = torch.rand(16, 6, generator=g, dtype=torch.float64) * 5  # (B, G)
    alpha = torch.tensor(nvae_alpha([4, 2], "square"), dtype=torch.float64)
    c = balancing_coefficients(kl, alpha)
    raw = (kl.abs().mean(0) + 0.01) / alpha
    assert torch.allclose(c, 6 * raw / raw.sum())
    assert float(c.sum()) == pytest.approx(6.0)
    # NVAE's code (kl_coeff_i / alpha_i * total_kl, then / mean) gives the same numbers
    ref = (kl.abs().mean(0, keepdim=True) + 0.01) / alpha * (kl.abs().mean(0) + 0.01).sum()
    assert torch.allclose(c, (ref / ref.mean(1, keepdim=True)).squeeze(0))


def hier_output(b=8, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    sizes, scales = (2, 2, 8, 8), (0, 0, 1, 1)
    kl = torch.rand(b, sum(sizes), generator=g).requires_grad_(requires_grad)
    return output(kl, sizes, scales)


def test_balancing_only_during_warmup():
    spec = kl_spec(schedule={"kind": "linear_warmup", "anneal_portion": 0.5, "const_portion": 0.0},
                   balancing={"kind": "nvae"})
    sch = scheme_for(spec, total=100)  # warm-up for steps 0..49
    out = hier_output(requires_grad=True)
    r, logs = rate_term(out, spec, sch, 10)
    coeffs = [logs[f"kl_coeff/{g}"] for g in range(4)]
    assert sum(coeffs) == pytest.approx(4.0)
    assert coeffs != pytest.approx([1, 1, 1, 1])
    kg = out.kl_groups().mean(0).detach()
    want = float((torch.tensor(coeffs) * kg).sum())
    assert float(r.detach()) == pytest.approx(want, rel=REL)
    r.backward()  # coefficients are detached: d R / d KL_bg = c_g / B
    assert torch.allclose(out.kl.grad[0, :2], torch.full((2,), coeffs[0] / 8))
    r2, logs2 = rate_term(out, spec, sch, 60)  # after warm-up: the plain sum
    assert [logs2[f"kl_coeff/{g}"] for g in range(4)] == [1.0] * 4
    assert float(r2.detach()) == pytest.approx(float(out.kl.sum(1).mean().detach()), rel=REL)


def test_balancing_composes_with_free_bits():
    spec = kl_spec(schedule={"kind": "linear_warmup"}, balancing={"kind": "nvae"},
                   free_bits={"lambda": 0.6, "group": "per_dim"})
    out = hier_output()
    r, logs = rate_term(out, spec, scheme_for(spec), 0)
    coeffs = torch.tensor([logs[f"kl_coeff/{g}"] for g in range(4)])
    clamped = out.kl.mean(0).clamp_min(0.6)
    per_group = torch.stack([c.sum() for c in clamped.split([2, 2, 8, 8])])
    assert float(r) == pytest.approx(float((coeffs * per_group).sum()), rel=REL)
