"""Stateful KL controllers: dual ascent, PI (ControlVAE), GECO; vectors, formulas, state."""

from __future__ import annotations

import json
import math

import pytest
import torch

from vae_engine.kl import SchemeContext, build_scheme
from vae_engine.kl.dual_ascent import dual_ascent_step
from vae_engine.kl.geco import geco_genesis_step, geco_multiplier_step
from vae_engine.kl.pi_controller import pi_step
from vae_engine.spec import KLSpec

REL = 1e-5
CTX = SchemeContext(data_dims=64, latent_dims=8, total_steps=1000, steps_per_epoch=10)


def scheme(schedule: dict):
    return build_scheme(KLSpec.model_validate({"schedule": schedule}).schedule, CTX)


def stats(rate: float, distortion: float = 100.0) -> dict[str, float]:
    return {"rate": rate, "rate_term": rate, "distortion": distortion}


# --------------------------------------------------------------------------- dual ascent


def test_dual_ascent_vector():
    s = scheme({"kind": "dual_ascent"})  # beta_0 0.1, I_c 0.1, alpha 1e-5
    got = []
    for r in [0.5, 0.5, 0.05]:
        s.update(len(got), stats(r))
        got.append(s.weight(len(got)))
    assert got == pytest.approx([0.100004, 0.100008, 0.1000075], rel=REL)


def test_dual_ascent_clamps_at_zero_and_logs():
    assert dual_ascent_step(0.01, 0.0, 25.0, 1e-2) == 0.0
    s = scheme({"kind": "dual_ascent", "target_rate": 25.0, "step_size": 0.01})
    s.update(0, stats(30.0))
    _, logs = s.objective(torch.tensor(1.0), torch.tensor(30.0), 1)
    assert logs == {"beta": pytest.approx(0.15), "kl_target": 25.0, "controller_error": 5.0}


# --------------------------------------------------------------------------- PI controller


def reference_pi(errors, kp, ki, lo, hi):
    """ENGINE_SPEC 2.7 written out, with the clamping anti-windup."""
    integral, betas = 0.0, []
    for e in errors:
        p = kp / (1 + math.exp(e))
        cand = integral - ki * e
        if cand > integral:
            integral = max(integral, min(cand, hi - lo - p))
        else:
            integral = min(integral, max(cand, -p))
        betas.append(min(max(p + integral + lo, lo), hi))
    return betas


@pytest.mark.parametrize("seed", [0, 1])
def test_pi_matches_formula(seed):
    g = torch.Generator().manual_seed(seed)
    rates = (25 + 10 * torch.randn(200, generator=g)).tolist()  # 200 random rates
    s = scheme({"kind": "pi_controller", "kp": 0.01, "ki": 0.01})
    got = []
    for t, r in enumerate(rates):
        s.update(t, stats(r))
        got.append(s.weight(t + 1))
    want = reference_pi([25 - r for r in rates], 0.01, 0.01, 0.0, 1.0)
    assert got == pytest.approx(want, rel=REL, abs=1e-12)


def test_pi_first_steps_by_hand():
    s = scheme({"kind": "pi_controller", "kp": 0.01, "ki": 1e-4, "target_rate": 25})
    assert s.weight(0) == 0.0  # beta_min before any update
    s.update(0, stats(30.0))  # e = -5: P = 0.01/(1+e^-5), I = 5e-4
    p = 0.01 / (1 + math.exp(-5))
    assert s.weight(1) == pytest.approx(p + 5e-4, rel=REL)
    _, logs = s.objective(torch.tensor(1.0), torch.tensor(30.0), 1)
    assert logs["controller_error"] == -5.0
    assert logs["controller_integral"] == pytest.approx(5e-4)
    assert logs["kl_target"] == 25.0


def test_pi_anti_windup_releases_immediately():
    """Rate far above the set-point for 1000 steps pins beta at beta_max; without a working
    guard the integral would reach ~ki*1000*75 = 7.5 and beta would stay pinned for ~1000
    steps after the rate drops. With the guard it leaves beta_max on the first step."""
    s = scheme({"kind": "pi_controller", "kp": 0.01, "ki": 1e-3})
    for t in range(1000):
        s.update(t, stats(100.0))
    assert s.weight(1000) == 1.0
    assert s.integral == pytest.approx(1.0 - 0.01 / (1 + math.exp(-75)))  # stops at the bound
    s.update(1000, stats(0.0))  # e = +25: integrating now moves beta back inside
    assert s.weight(1001) < 1.0
    # the unguarded integrator (the official code's never-true guard) stays wound up
    integral = 0.0
    for _ in range(1000):
        integral += 1e-3 * 75
    assert integral - 1e-3 * 25 + 0.0 > 1.0


def test_pi_anti_windup_at_lower_bound():
    integral = 0.0
    for _ in range(500):  # rate far below target: beta wants to go negative
        integral, beta = pi_step(integral, 25.0, 0.01, 1e-3, 0.0, 1.0)
        assert beta == pytest.approx(0.0, abs=1e-9)
    assert integral >= -0.01 - 1e-3
    integral, beta = pi_step(integral, -5.0, 0.01, 1e-3, 0.0, 1.0)
    assert beta > 0.0


def test_pi_disentangling_variant():
    s = scheme({"kind": "pi_controller", "variant": "disentangling", "target_rate": 1.0,
                "set_point_start": 0.5, "step_val": 0.15, "step_every": 10})
    assert s.beta_min == 1.0 and s.beta_max == math.inf
    assert [s.set_point(t) for t in (0, 9, 10, 25, 40, 1000)] == pytest.approx(
        [0.5, 0.5, 0.65, 0.8, 1.0, 1.0]
    )
    for t in range(50):
        s.update(t, stats(20.0))  # far above: beta grows without an upper clip
        assert s.weight(t + 1) >= 1.0
    assert s.weight(50) > 1.0


# --------------------------------------------------------------------------- GECO


def test_geco_multiplier_by_hand():
    s = scheme({"kind": "geco", "kappa": 50.0, "lr": 0.01, "alpha": 0.9})
    d1, d2 = 60.0, 40.0
    s.update(0, stats(5.0, d1))  # c_ma = 10, lambda = e^0.1
    assert s.state_dict() == {"value": pytest.approx(math.exp(0.1)), "ema": 10.0}
    s.update(1, stats(5.0, d2))  # c_ma = 0.9*10 + 0.1*(-10) = 8
    assert s.state_dict()["ema"] == pytest.approx(8.0)
    lam = math.exp(0.1) * math.exp(0.08)
    assert s.weight(2) == pytest.approx(1 / lam, rel=REL)
    dist = torch.tensor(40.0, requires_grad=True)
    rate = torch.tensor(5.0, requires_grad=True)
    loss, logs = s.objective(dist, rate, 2)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(5.0 + lam * 40.0, rel=REL)
    assert float(dist.grad) == pytest.approx(lam) and float(rate.grad) == 1.0
    assert logs["beta"] == pytest.approx(1 / lam) and logs["geco_constraint"] == pytest.approx(8)


def test_geco_genesis_speedup_and_clamp():
    # satisfied (err < kappa): beta grows speedup times faster
    b, ema = geco_genesis_step(1.0, None, 40.0, 50.0, 0.99, 0.01, 10.0)
    assert ema == 40.0 and b == pytest.approx(math.exp(10 * 0.01 * 10), rel=REL)
    # violated: plain rate, beta shrinks
    b, ema = geco_genesis_step(1.0, 60.0, 140.0, 50.0, 0.99, 0.01, 10.0)
    assert ema == pytest.approx(60.8) and b == pytest.approx(math.exp(-0.01 * 10.8), rel=REL)
    b, _ = geco_genesis_step(1.0, None, 1e6, 50.0, 0.99, 1.0, 10.0)
    assert b == 1e-10
    lam, _ = geco_multiplier_step(1.0, None, 1e9, 0.0, 0.99, 1.0)
    assert lam == 1e10


def test_geco_genesis_objective():
    s = scheme({"kind": "geco", "form": "genesis", "kappa": 50.0, "init": 2.0})
    loss, logs = s.objective(torch.tensor(10.0), torch.tensor(3.0), 0)
    assert float(loss) == pytest.approx(16.0) and logs["beta"] == 2.0
    s.update(0, stats(3.0, 70.0))
    assert s.constraint() == pytest.approx(20.0)  # smoothed D - kappa in both forms


# --------------------------------------------------------------------------- state


# State round trip and exact resume of every stateful scheme: test_contracts.py.


def test_geco_state_before_first_update_round_trips():
    a = scheme({"kind": "geco", "kappa": 80.0})
    b = scheme({"kind": "geco", "kappa": 80.0})
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert b.ema is None
