"""The first three KL schedules (ENGINE_SPEC 2.1, 2.2 and section 1's beta_norm)."""

import pytest

from vae_engine.kl import SchemeContext, build_scheme
from vae_engine.kl.beta_norm import BetaNormSchedule
from vae_engine.kl.constant import ConstantSchedule
from vae_engine.kl.linear_warmup import LinearWarmupSchedule


def ctx(total=100_000, n=784, m=16):
    return SchemeContext(data_dims=n, latent_dims=m, total_steps=total, steps_per_epoch=100)


def test_linear_warmup_scales_by_beta_max():
    scheme = build_scheme(LinearWarmupSchedule(beta_max=4.0), ctx())
    assert scheme.weight(15010) == pytest.approx(2.0, rel=1e-5)
    assert scheme.weight(90_000) == pytest.approx(4.0)


@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0])
def test_constant(beta):
    scheme = build_scheme(ConstantSchedule(beta=beta), ctx())
    assert {scheme.weight(s) for s in (0, 1, 10**6)} == {beta}
    assert scheme.state_dict() == {}


@pytest.mark.parametrize("n,m,beta_norm", [(784, 16, 0.1), (4096, 10, 0.001), (64, 4, 2.0)])
def test_beta_norm_converts_to_sum_units(n, m, beta_norm):
    scheme = build_scheme(BetaNormSchedule(beta_norm=beta_norm), ctx(n=n, m=m))
    assert scheme.weight(0) == pytest.approx(beta_norm * n / m)


def test_objective_reports_d_loss_d_rate():
    import torch

    scheme = build_scheme(ConstantSchedule(beta=3.0), ctx())
    d, r = torch.tensor(10.0), torch.tensor(2.0, requires_grad=True)
    loss, logs = scheme.objective(d, r, 0)
    loss.backward()
    assert float(loss.detach()) == 16.0 and logs["beta"] == float(r.grad) == 3.0


def test_beta_norm_gives_the_same_effective_beta_in_both_reductions(tiny_spec):
    # digits: N = 64, M = 4; beta_effective is logged in sum-mode units either way.
    from vae_engine import train
    from vae_engine.io import ListSink

    for reduction in ("sum", "mean"):
        tiny_spec["kl"] = {"schedule": {"kind": "beta_norm", "beta_norm": 0.1},
                           "reduction": reduction}
        sink = ListSink()
        train(tiny_spec, sink)
        betas = [v for _, v in sink.series("beta_effective")]
        assert betas and all(b == pytest.approx(0.1 * 64 / 4) for b in betas), reduction
