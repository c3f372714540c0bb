"""Spec validation of the KL section: defaults, bounds, and rejected combinations."""

from __future__ import annotations

import pytest

from vae_engine.errors import SpecError
from vae_engine.spec import parse_spec

HIER = {"arch": "hierarchical", "groups_per_scale": [2, 2]}


def errors(data: dict) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return str(info.value)


def test_defaults_follow_engine_spec():
    s = parse_spec({"kl": {"schedule": {"kind": "capacity"}, "free_bits": {}}}).kl
    assert (s.schedule.gamma, s.schedule.c_max, s.schedule.c_stop_steps) == (1000, 25, 100_000)
    assert s.free_bits.lambda_ == 0.25 and s.free_bits.average == "batch"
    assert s.estimator == "analytic" and s.balancing is None
    d = parse_spec({"kl": {"schedule": {"kind": "dual_ascent"}}}).kl.schedule
    assert (d.beta_init, d.step_size, d.target_rate) == (0.1, 1e-5, 0.1)
    p = parse_spec({"kl": {"schedule": {"kind": "pi_controller"}}}).kl.schedule
    assert (p.kp, p.ki, p.target_rate) == (0.01, 1e-4, 25.0)


def test_free_bits_lambda_round_trips_by_its_name():
    spec = parse_spec({"kl": {"free_bits": {"lambda": 0.5}}})
    dumped = spec.model_dump(mode="json")
    assert dumped["kl"]["free_bits"]["lambda"] == 0.5
    assert parse_spec(dumped) == spec


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"kl": {"schedule": {"kind": "linear_warmup"}, "balancing": {"kind": "nvae"}}},
         "kl.balancing: KL balancing needs a model with several latent groups"),
        ({"model": HIER, "kl": {"balancing": {}}}, "has none (use one of: linear_warmup"),
        ({"kl": {"free_bits": {"group": "per_group"}}}, "kl.free_bits.group: 'per_group'"),
        ({"model": HIER, "kl": {"estimator": "batch_stats"}}, "conditional priors"),
        ({"kl": {"estimator": "batch_stats", "free_bits": {"average": "per_sample"}}},
         "kl.free_bits.average"),
        ({"kl": {"estimator": "batch_stats"}, "optim": {"batch_size": 1}}, "batch_size >= 2"),
        ({"kl": {"schedule": {"kind": "pi_controller", "beta_min": 2, "beta_max": 1}}},
         "beta_min: must be below"),
        ({"dataset": {"name": "digits"}, "model": {**HIER, "groups_per_scale": [1, 1, 1]}},
         "use at most 2 scales"),
        ({"model": {**HIER, "groups_per_scale": [2]}}, "model.groups_per_scale"),
    ],
)
def test_nonsense_combinations_are_rejected(data, needle):
    assert needle in errors(data)


def test_valid_combinations_are_accepted():
    spec = parse_spec({"model": HIER, "kl": {"schedule": {"kind": "linear_warmup"},
                                             "balancing": {"alpha": "sqrt"},
                                             "free_bits": {"group": "per_group"}}})
    assert (spec.kl.balancing.kind, spec.kl.balancing.alpha) == ("nvae", "sqrt")
    assert spec.kl.free_bits.group == "per_group" and spec.model.latent_groups() == 4
    spec = parse_spec({"kl": {"schedule": {"kind": "dual_ascent"}, "estimator": "batch_stats",
                              "free_bits": {}}})
    assert spec.kl.estimator == "batch_stats" and spec.kl.free_bits.lambda_ == 0.25
    spec = parse_spec({"dataset": {"name": "digits"}, "model": HIER})
    assert spec.dataset.side() == 8 and spec.model.groups_per_scale == HIER["groups_per_scale"]


@pytest.mark.parametrize(
    ("kl", "field"),
    [
        ({"schedule": {"kind": "cyclical", "ratio": 0}}, "kl.schedule.ratio"),
        ({"schedule": {"kind": "cyclical", "shape": "square"}}, "kl.schedule.shape"),
        ({"schedule": {"kind": "geco"}}, "kl.schedule.kappa"),
        ({"schedule": {"kind": "sigmoid", "k": -1}}, "kl.schedule.k"),
        ({"free_bits": {"lambda": 0}}, "kl.free_bits.lambda"),
        ({"balancing": {"alpha": "cubic"}}, "kl.balancing.alpha"),
        ({"estimator": "mc"}, "kl.estimator"),
    ],
)
def test_bad_fields_are_named(kl, field):
    with pytest.raises(SpecError) as info:
        parse_spec({"kl": kl})
    assert field in [e["field"] for e in info.value.errors]
