"""KL weight schedules: ENGINE_SPEC section 5 vectors and closed forms (rel. tol. 1e-5)."""

from __future__ import annotations

import math

import pytest

from vae_engine.kl import SchemeContext, build_scheme
from vae_engine.kl.capacity import capacity_at
from vae_engine.kl.cyclical import cyclical_weight
from vae_engine.kl.linear_warmup import warmup_weight
from vae_engine.kl.sigmoid import logistic, sigmoid_weight
from vae_engine.spec import KLSpec

REL = 1e-5


def scheme(schedule: dict, total_steps: int = 100, latent: int = 8, data: int = 64, **ctx):
    spec = KLSpec.model_validate({"schedule": schedule}).schedule
    return build_scheme(spec, SchemeContext(data, latent, total_steps, 10, **ctx))


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 1e-4), (10, 1e-4), (11, 1e-4), (15010, 0.5), (30010, 1.0), (50000, 1.0)],
)
def test_linear_warmup_vector(step, expected):
    assert warmup_weight(step, 100_000, 0.3, 1e-4, 1e-4) == pytest.approx(expected, rel=REL)
    s = scheme({"kind": "linear_warmup"}, total_steps=100_000)
    assert s.weight(step) == pytest.approx(expected, rel=REL)
    assert s.in_warmup(step) == (expected < 1.0)


@pytest.mark.parametrize(
    ("total", "n_cycle", "expected"),
    [(16, 4, [0, 0.5, 1, 1] * 4), (10, 2, [0, 0.4, 0.8, 1, 1] * 2)],
)
def test_cyclical_linear_vector(total, n_cycle, expected):
    got = [cyclical_weight(t, total, n_cycle, 0.5) for t in range(total)]
    assert got == pytest.approx(expected, rel=REL, abs=1e-12)
    s = scheme({"kind": "cyclical", "n_cycle": n_cycle}, total_steps=total)
    assert [s.weight(t) for t in range(total)] == pytest.approx(expected, rel=REL, abs=1e-12)


@pytest.mark.parametrize("shape", ["linear", "sigmoid", "cosine"])
@pytest.mark.parametrize(("total", "n_cycle", "ratio"), [(100, 4, 0.5), (90, 3, 1.0), (50, 1, 0.2)])
def test_cyclical_shapes_closed_form(shape, total, n_cycle, ratio):
    period = total / n_cycle
    for t in range(total):
        tau = (t % period) / period
        r = tau / ratio if tau <= ratio else 1.0
        ramp = tau <= ratio  # the reference's sigmoid is sigma(6) at tau = R, 1 only after
        want = {
            "linear": r,
            "sigmoid": 1 / (1 + math.exp(-(12 * r - 6))) if ramp else 1.0,
            "cosine": 0.5 - 0.5 * math.cos(math.pi * r),
        }[shape]
        assert cyclical_weight(t, total, n_cycle, ratio, shape) == pytest.approx(want, rel=REL)
        # start/stop rescale the shape affinely
        assert cyclical_weight(t, total, n_cycle, ratio, shape, 0.2, 0.7) == pytest.approx(
            0.2 + 0.5 * want, rel=REL
        )


def _frange_cycle_sigmoid(n_iter: int, n_cycle: int, ratio: float) -> list[float]:
    """haofuml/cyclical_annealing's frange_cycle_sigmoid (start 0, stop 1), re-typed."""
    out = [1.0] * n_iter
    period = n_iter / n_cycle
    step = 1.0 / (period * ratio)
    for c in range(n_cycle):
        v, i = 0.0, 0
        while v <= 1.0:
            out[int(i + c * period)] = 1.0 / (1.0 + math.exp(-(v * 12.0 - 6.0)))
            v += step
            i += 1
    return out


def test_cyclical_sigmoid_matches_reference_endpoint():
    """T = 16, 4 cycles, R = 0.5: tau = R at t = 2 gives sigma(6) = 0.997527, as the reference."""
    got = [cyclical_weight(t, 16, 4, 0.5, "sigmoid") for t in range(16)]
    assert got[2] == pytest.approx(0.997527, abs=1e-6)
    assert got[3] == 1.0
    assert got == pytest.approx(_frange_cycle_sigmoid(16, 4, 0.5), rel=REL)


def test_cyclical_reaches_stop_with_ratio_one():
    """The closed form reaches `stop` at the end of each ramp (the reference code does not)."""
    got = [cyclical_weight(t, 8, 2, 1.0) for t in range(8)]
    assert got == pytest.approx([0, 0.25, 0.5, 0.75] * 2)
    assert cyclical_weight(4 - 1e-9, 8, 2, 1.0) == pytest.approx(1.0)


def test_cyclical_warmup_is_the_ramp():
    s = scheme({"kind": "cyclical", "n_cycle": 4}, total_steps=16)
    assert [s.in_warmup(t) for t in range(4)] == [True, True, False, False]


@pytest.mark.parametrize(
    ("step", "expected"), [(0, 0.0), (1, 0.00025), (50_000, 12.5), (100_000, 25.0), (200_000, 25.0)]
)
def test_capacity_vector(step, expected):
    assert capacity_at(step, 25.0, 100_000) == pytest.approx(expected, rel=REL)
    assert scheme({"kind": "capacity"}).capacity(step) == pytest.approx(expected, rel=REL)


@pytest.mark.parametrize(("step", "expected"), [(0, 0.0019267), (2500, 0.5), (5000, 0.9980733)])
def test_sigmoid_vector(step, expected):
    # the spec rounds to 7 decimals (0.0019267 for 0.00192673...): half a unit of that too
    assert sigmoid_weight(step, 0.0025, 2500) == pytest.approx(expected, rel=REL, abs=5e-8)
    assert scheme({"kind": "sigmoid"}).weight(step) == pytest.approx(expected, rel=REL, abs=5e-8)


def test_sigmoid_scaled_and_stable():
    s = scheme({"kind": "sigmoid", "beta_max": 4.0, "k": 0.1, "t0": 10})
    for t in [0, 5, 10, 37]:
        assert s.weight(t) == pytest.approx(4.0 / (1 + math.exp(-0.1 * (t - 10))), rel=REL)
    assert logistic(-1e6) == 0.0 and logistic(1e6) == 1.0  # no OverflowError


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_capacity_objective_and_logs(reduction):
    import torch

    m = 8
    s = scheme({"kind": "capacity", "gamma": 10.0, "c_max": 20.0, "c_stop_steps": 100},
               latent=m, reduction=reduction)
    scale = 1 / m if reduction == "mean" else 1.0
    for rate_nats, sign in [(3.0, -1), (30.0, 1)]:
        rate = torch.tensor(rate_nats * scale, requires_grad=True)
        loss, logs = s.objective(torch.tensor(1.0), rate, step=50)  # C = 10
        want = 1.0 + 10.0 * abs(rate_nats - 10.0) * scale
        assert float(loss.detach()) == pytest.approx(want, rel=REL)
        loss.backward()
        assert float(rate.grad) == pytest.approx(logs["beta"]) and logs["beta"] == 10.0 * sign
        assert logs["capacity"] == pytest.approx(10.0)
        assert logs["kl_minus_capacity"] == pytest.approx(rate_nats - 10.0, rel=REL)
    assert s.in_warmup(99) and not s.in_warmup(100)


@pytest.mark.parametrize(
    ("schedule", "want"),
    [({"kind": "constant", "beta": 3.0}, 3.0), ({"kind": "beta_norm", "beta_norm": 0.5}, 4.0)],
)
def test_stateless_weights(schedule, want):
    s = scheme(schedule)  # N = 64, M = 8
    assert s.weight(0) == s.weight(99) == pytest.approx(want)
    assert s.state_dict() == {}


def test_cyclical_rejects_more_cycles_than_steps():
    from vae_engine.errors import SpecError
    from vae_engine.kl import SchemeContext, build_scheme
    from vae_engine.kl.cyclical import CyclicalSchedule

    ctx = SchemeContext(data_dims=64, latent_dims=4, total_steps=10, steps_per_epoch=10)
    with pytest.raises(SpecError) as info:
        build_scheme(CyclicalSchedule(n_cycle=1000), ctx)
    assert info.value.errors[0]["field"] == "kl.schedule.n_cycle"
    assert build_scheme(CyclicalSchedule(n_cycle=10), ctx).weight(0) == 0.0
