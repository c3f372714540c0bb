"""Behaviour of the KL schemes in short real training runs (CPU, mnist5k / digits).

Every run states its seed, length and tolerance; each takes well under a minute on one CPU
thread. Rates and distortions are nats per example, as logged by the trainer every step.
"""

from __future__ import annotations

import copy
import statistics

import pytest

from vae_engine import train
from vae_engine.io import ListSink, LocalArtifacts

MNIST = {
    "dataset": {"name": "mnist5k"},
    "model": {"arch": "mlp", "latent_dim": 16, "hidden": [256]},
    "likelihood": {"kind": "bernoulli"},
    "optim": {"batch_size": 64, "lr": 2e-3},
    "train": {"epochs": 1000, "max_steps": 600, "log_every": 1, "eval_every_epochs": 0,
              "checkpoint_every_epochs": 0, "seed": 0, "device": "cpu"},
    "eval": {"iwae_k": 1, "max_examples": 100},
}


def run(base: dict, **sections) -> ListSink:
    spec = copy.deepcopy(base)
    for key, value in sections.items():  # merge sections; a model is replaced whole
        spec[key] = value if key == "model" else {**spec.get(key, {}), **value}
    sink = ListSink()
    train(spec, sink)
    return sink


def last_fifth_mean(sink: ListSink, key: str) -> float:
    values = [v for _, v in sink.series(key)]
    return statistics.fmean(values[len(values) * 4 // 5:])


@pytest.mark.slow
@pytest.mark.parametrize(
    "schedule",
    [
        {"kind": "pi_controller", "target_rate": 25.0, "kp": 0.01, "ki": 1e-3},
        {"kind": "dual_ascent", "target_rate": 25.0, "beta_init": 0.1, "step_size": 1e-3},
    ],
    ids=["pi_controller", "dual_ascent"],
)
def test_controllers_hold_the_rate_at_the_set_point(schedule):
    """mnist5k, seed 0, 600 steps of 64: last-fifth mean batch rate within 10% of 25 nats."""
    sink = run(MNIST, kl={"schedule": schedule})
    rate = last_fifth_mean(sink, "rate")
    assert abs(rate - 25.0) < 2.5, rate
    assert sink.series("kl_target") and sink.series("controller_error")


@pytest.mark.slow
def test_capacity_tracks_c():
    """mnist5k, seed 0, 600 steps, C reaches 25 at step 300 (gamma 1000): the last-fifth mean
    rate is within 10% of C, and the logged gap agrees."""
    sink = run(MNIST, kl={"schedule": {"kind": "capacity", "c_max": 25.0, "c_stop_steps": 300}})
    assert abs(last_fifth_mean(sink, "rate") - 25.0) < 2.5
    assert abs(last_fifth_mean(sink, "kl_minus_capacity")) < 2.5
    assert sink.series("capacity")[-1][1] == 25.0


@pytest.mark.slow
def test_geco_holds_the_distortion_at_kappa():
    """mnist5k, seed 0, 600 steps, kappa 80 (beta = 1 reaches ~98 here, so the multiplier has
    to work): last-fifth mean distortion within 10% of kappa."""
    sink = run(MNIST, kl={"schedule": {"kind": "geco", "kappa": 80.0, "lr": 1e-4}})
    dist = last_fifth_mean(sink, "distortion")
    assert abs(dist - 80.0) < 8.0, dist
    assert sink.series("geco_constraint") and sink.series("geco_lambda")


def test_free_bits_never_report_the_clamped_rate():
    """mnist5k, seed 0, 60 steps, lambda = 3 nats on each of 16 units: the clamped term is at
    least 48 nats while the reported rate is the smaller analytic one."""
    sink = run(MNIST, kl={"free_bits": {"lambda": 3.0}}, train={"max_steps": 60})
    rates = dict(sink.series("rate"))
    terms = dict(sink.series("rate_term"))
    assert all(terms[s] >= 48.0 - 1e-4 for s in terms)
    assert min(rates.values()) < 48.0  # clamping was active and not reported as the rate
    assert all(rates[s] <= terms[s] + 1e-4 for s in rates)
    assert sink.evals[-1][1]["rate"] < 48.0


@pytest.mark.slow
def test_nvae_balancing_sums_to_groups_and_stops_after_warmup():
    """Hierarchical model (4 groups, 2 scales) on mnist5k, seed 0, 40 steps with a linear
    warm-up over the first half: every step's coefficients sum to 4 (1e-5), differ from 1
    during the warm-up and are all exactly 1 after it; per-group KL is logged."""
    sink = run(
        MNIST,
        model={"arch": "hierarchical", "channels": 8, "groups_per_scale": [2, 2]},
        kl={"schedule": {"kind": "linear_warmup", "anneal_portion": 0.5, "const_portion": 0.0},
            "balancing": {"kind": "nvae"}},
        optim={"batch_size": 32},
        train={"max_steps": 40, "log_every": 1},
    )
    points = [(s, m) for s, m in sink.points if "loss" in m]  # training points, not eval/
    assert len(points) == 40
    for step, m in points:
        coeffs = [m[f"kl_coeff/{g}"] for g in range(4)]
        assert sum(coeffs) == pytest.approx(4.0, rel=1e-5)
        # logged step s is after step s-1 ran; warm-up weight < 1 for steps 0..19
        if step <= 20:
            assert max(abs(c - 1.0) for c in coeffs) > 1e-3
        else:
            assert coeffs == [1.0] * 4
        assert all(f"kl_group/{g}" in m for g in range(4))


DIGITS = {
    "dataset": {"name": "digits"},
    "model": {"arch": "mlp", "latent_dim": 4, "hidden": [32]},
    "likelihood": {"kind": "bernoulli"},
    "optim": {"batch_size": 64, "lr": 3e-3},
    "train": {"epochs": 100, "max_steps": 50, "log_every": 1, "eval_every_epochs": 0,
              "checkpoint_every_epochs": 0, "seed": 0, "device": "cpu"},
    "eval": {"iwae_k": 2, "max_examples": 64},
}


@pytest.mark.parametrize(
    "kl",
    [
        {"schedule": {"kind": "dual_ascent", "target_rate": 5.0, "step_size": 0.01}},
        {"schedule": {"kind": "pi_controller", "target_rate": 5.0, "ki": 0.01}},
        {"schedule": {"kind": "geco", "kappa": 30.0, "lr": 1e-3}},
        {"schedule": {"kind": "geco", "kappa": 30.0, "lr": 1e-3, "form": "genesis"}},
        {"schedule": {"kind": "dual_ascent", "target_rate": 5.0, "step_size": 0.01},
         "estimator": "batch_stats", "free_bits": {"lambda": 0.1}},
    ],
    ids=["dual_ascent", "pi_controller", "geco", "geco_genesis", "batch_stats_free_bits"],
)
def test_resume_mid_run_reproduces_the_uninterrupted_run(kl, tmp_path):
    """digits, seed 0, 50 steps; stop after step 23 (checkpoint), resume: every logged metric
    of steps 24..50 equals the uninterrupted run's exactly (timings excepted)."""
    full = run(DIGITS, kl=kl)
    spec = copy.deepcopy(DIGITS)
    spec["kl"] = kl
    calls = {"n": 0}

    def stop_at_23() -> bool:
        calls["n"] += 1
        return calls["n"] == 23

    first = ListSink()
    stopped = train(spec, first, LocalArtifacts(tmp_path), should_stop=stop_at_23)
    assert stopped.status == "stopped" and stopped.step == 23
    second = ListSink()
    done = train(spec, second, LocalArtifacts(tmp_path), resume_from=stopped.last_checkpoint)
    assert done.status == "completed"

    def strip(points):
        return [(s, {k: v for k, v in m.items() if k != "examples_per_s"}) for s, m in points]

    resumed = strip(first.points) + strip(second.points)
    assert resumed == strip(full.points)
