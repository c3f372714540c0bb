"""Sweeps: grid expansion, explicit overrides, union paths and the errors naming bad paths."""

from __future__ import annotations

import pytest

from vae_engine.errors import SpecError
from vae_engine.spec import TrainSpec
from vae_engine.spec.sweep import (
    MAX_POINTS,
    apply_overrides,
    apply_point,
    build_sweep,
    expand_grid,
    validate_points,
)

BASE = {
    "dataset": {"name": "digits"},
    "model": {"arch": "mlp", "latent_dim": 4, "hidden": [32]},
    "kl": {"schedule": {"kind": "constant", "beta": 0.5}},
    "train": {"epochs": 1},
}


def errors_of(fn, *args, **kwargs) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        fn(*args, **kwargs)
    return {e["field"]: e["message"] for e in info.value.errors}


# --------------------------------------------------------------------------- expansion


def test_grid_is_the_cartesian_product_in_key_order():
    points = expand_grid(BASE, {"kl.schedule.beta": [0.1, 1, 10], "train.seed": [0, 1]})
    assert [p["index"] for p in points] == list(range(6))
    assert [p["overrides"] for p in points] == [
        {"kl.schedule.beta": b, "train.seed": s} for b in (0.1, 1, 10) for s in (0, 1)
    ]
    last = points[-1]["spec"]
    assert last["kl"]["schedule"] == {"kind": "constant", "beta": 10}
    assert last["train"] == {"epochs": 1, "seed": 1}
    assert last["model"] == BASE["model"]


def test_expansion_is_deterministic_and_leaves_the_inputs_alone():
    grid = {"model.hidden": [[16], [32, 32]], "optim.lr": [1e-3]}
    a, b = expand_grid(BASE, grid), expand_grid(BASE, grid)
    assert a == b
    a[0]["spec"]["model"]["hidden"].append(99)
    assert BASE["model"]["hidden"] == [32] and grid["model.hidden"][0] == [16]


def test_missing_sections_are_created():
    spec = apply_point({}, {"kl.free_bits.lambda": 0.5, "optim.batch_size": 32})
    assert spec == {"kl": {"free_bits": {"lambda": 0.5}}, "optim": {"batch_size": 32}}
    # an optional section set to None in the base becomes a section
    spec = apply_point({"kl": {"free_bits": None}}, {"kl.free_bits.lambda": 0.5})
    assert spec["kl"]["free_bits"] == {"lambda": 0.5}


@pytest.mark.parametrize(("grid", "field", "words"), [
    ({}, "grid", "empty"),
    ({"kl.schedule.beta": []}, "grid.kl.schedule.beta", "no values"),
    ({"kl.schedule.beta": 0.3}, "grid.kl.schedule.beta", "list of values"),
    ({"kl..beta": [1]}, "grid.kl..beta", "dotted spec path"),
    ({".beta": [1]}, "grid..beta", "dotted spec path"),
])
def test_malformed_grids(grid, field, words):
    errs = errors_of(expand_grid, BASE, grid)
    assert field in errs and words in errs[field]


def test_every_malformed_key_is_named_at_once():
    errs = errors_of(expand_grid, BASE, {"a": [], "b": 3, "c..d": [1], "optim.lr": [0.1]})
    assert set(errs) == {"grid.a", "grid.b", "grid.c..d"}


def test_too_many_points():
    grid = {"train.seed": list(range(20)), "kl.schedule.beta": list(range(13))}
    errs = errors_of(expand_grid, BASE, grid)
    assert "260 points (20 x 13)" in errs["grid"] and str(MAX_POINTS) in errs["grid"]
    assert len(expand_grid(BASE, grid, max_points=260)) == 260
    errs = errors_of(expand_grid, BASE, {"train.seed": [0, 1, 2]}, max_points=2)
    assert "limit of 2" in errs["grid"]


def test_base_must_be_a_mapping():
    assert "base" in errors_of(expand_grid, [1], {"train.seed": [0]})


# --------------------------------------------------------------------------- validation


def test_valid_points_parse():
    points = expand_grid(BASE, {"kl.schedule.beta": [0.1, 1.0], "train.seed": [0, 1]})
    specs = validate_points(points)
    assert len(specs) == 4 and all(isinstance(s, TrainSpec) for s in specs)
    assert [s.kl.schedule.beta for s in specs] == [0.1, 0.1, 1.0, 1.0]
    assert [s.train.seed for s in specs] == [0, 1, 0, 1]


def test_unknown_path_is_named_with_the_valid_keys():
    points = expand_grid(BASE, {"kl.schedule.betaa": [1, 2], "train.seed": [0, 1]})
    errs = errors_of(validate_points, points)
    assert list(errs) == ["grid.kl.schedule.betaa"]  # once, not once per point
    msg = errs["grid.kl.schedule.betaa"]
    assert "unknown key 'betaa' in kl.schedule" in msg and "valid keys: beta, kind" in msg


@pytest.mark.parametrize(("path", "level", "some_valid"), [
    ("modle.latent_dim", "top level", "model"),
    ("model.latentdim", "in model", "latent_dim"),
    ("optim.learning_rate", "in optim", "lr"),
    ("kl.free_bits.lamda", "in kl.free_bits", "lambda"),
])
def test_unknown_paths_at_every_level(path, level, some_valid):
    errs = errors_of(validate_points, expand_grid(BASE, {path: [1]}))
    msg = errs[f"grid.{path}"]
    assert level in msg and some_valid in msg


def test_path_into_a_value_is_an_error():
    errs = errors_of(validate_points, expand_grid(BASE, {"model.hidden.width": [3]}))
    assert "model.hidden is a value" in errs["grid.model.hidden.width"]


def test_every_bad_path_is_named_at_once_with_point_indices():
    grid = {"kl.schedule.beta": [-1.0, 2.0], "optim.lr": [0.0, 1e-3], "foo.bar": [1]}
    errs = errors_of(validate_points, expand_grid(BASE, grid))
    assert set(errs) == {"grid.kl.schedule.beta", "grid.optim.lr", "grid.foo.bar"}
    assert errs["grid.kl.schedule.beta"].startswith("points 0, 1 (kl.schedule.beta=-1.0)")
    assert "greater than or equal to 0" in errs["grid.kl.schedule.beta"]
    assert errs["grid.optim.lr"].startswith("points 0, 2 (optim.lr=0.0)")


def test_single_bad_point_names_its_index_and_value():
    errs = errors_of(validate_points, expand_grid(BASE, {"kl.schedule.beta": [1, 2, -3]}))
    assert errs["grid.kl.schedule.beta"].startswith("point 2 (kl.schedule.beta=-3): ")


def test_cross_field_problems_are_attributed_to_the_override():
    with pytest.raises(SpecError) as info:
        validate_points(expand_grid(BASE, {"kl.balancing.alpha": ["sqrt"]}))
    errs = info.value.errors
    assert {e["field"] for e in errs} == {"grid.kl.balancing.alpha"}
    assert any("several latent groups" in e["message"] for e in errs)  # both problems
    assert any("only during a KL warm-up" in e["message"] for e in errs)
    assert all(e["message"].startswith("point 0 ") for e in errs)


def test_a_bad_base_is_reported_on_the_base():
    base = {**BASE, "optim": {"batch_size": 0}}
    errs = errors_of(validate_points, expand_grid(base, {"train.seed": [0, 1]}))
    assert errs == {"base.optim.batch_size": "every point: Input should be greater than or "
                    "equal to 1"}


# --------------------------------------------------------------------------- unions


def test_switching_the_schedule_kind_drops_the_old_kinds_parameters():
    points = expand_grid(BASE, {"kl.schedule.kind": ["constant", "capacity"]})
    specs = validate_points(points)
    assert points[0]["spec"]["kl"]["schedule"] == {"kind": "constant", "beta": 0.5}
    assert points[1]["spec"]["kl"]["schedule"] == {"kind": "capacity"}
    assert specs[1].kl.schedule.kind == "capacity" and specs[1].kl.schedule.c_max == 25.0


def test_kind_with_parameters_of_that_kind():
    base = {**BASE, "kl": {"schedule": {"kind": "capacity", "c_max": 5.0}}}
    grid = {"kl.schedule.kind": ["capacity"], "kl.schedule.gamma": [10.0, 100.0]}
    specs = validate_points(expand_grid(base, grid))
    assert [(s.kl.schedule.c_max, s.kl.schedule.gamma) for s in specs] == [(5.0, 10.0),
                                                                           (5.0, 100.0)]


def test_kind_switch_keeps_the_parameters_the_new_kind_accepts():
    spec = apply_point(BASE, {"model.arch": "conv", "model.hidden": 64})
    assert spec["model"] == {"arch": "conv", "latent_dim": 4, "hidden": 64}
    validate_points([{"index": 0, "overrides": {}, "spec": spec}])


def test_parameter_of_another_kind_names_the_points_and_the_kind():
    grid = {"kl.schedule.kind": ["constant", "capacity"], "kl.schedule.beta": [0.1, 1.0]}
    errs = errors_of(validate_points, expand_grid(BASE, grid))
    msg = errs["grid.kl.schedule.beta"]
    assert msg.startswith("points 2, 3 ")  # the capacity points only
    assert "when its kind is 'capacity'" in msg and "c_max" in msg


def test_whole_section_values_then_deeper_paths():
    grid = {"kl.schedule": [{"kind": "capacity", "c_max": 25}, {"kind": "sigmoid"}],
            "kl.schedule.beta_max": [2.0]}
    errs = errors_of(validate_points, expand_grid(BASE, grid))
    assert errs["grid.kl.schedule.beta_max"].startswith("point 0 ")
    grid["kl.schedule"] = [{"kind": "linear_warmup"}, {"kind": "sigmoid", "k": 0.1}]
    specs = validate_points(expand_grid(BASE, grid))
    assert [(s.kl.schedule.kind, s.kl.schedule.beta_max) for s in specs] == [
        ("linear_warmup", 2.0), ("sigmoid", 2.0)]


def test_unknown_key_under_several_kinds_lists_each_kinds_keys():
    grid = {"kl.schedule.kind": ["constant", "capacity"], "kl.schedule.betaa": [1]}
    errs = errors_of(validate_points, expand_grid(BASE, grid))
    msg = errs["grid.kl.schedule.betaa"]
    assert "beta, kind (kind 'constant')" in msg and "gamma, kind (kind 'capacity')" in msg


def test_a_bad_kind_is_named():
    errs = errors_of(validate_points, expand_grid(BASE, {"kl.schedule.kind": ["constnt"]}))
    assert "does not match any of the expected tags" in errs["grid.kl.schedule.kind"]


def test_dataset_and_likelihood_unions():
    grid = {"likelihood.kind": ["bernoulli", "gaussian"], "dataset.binarize": ["none"]}
    specs = validate_points(expand_grid(BASE, grid))
    assert [s.likelihood.kind for s in specs] == ["bernoulli", "gaussian"]
    errs = errors_of(validate_points, expand_grid(BASE, {"likelihood.sigma": ["fixed"]}))
    assert "only of kind gaussian" in errs["grid.likelihood.sigma"]


# --------------------------------------------------------------------------- overrides list


def test_explicit_overrides():
    overrides = [{"kl.schedule.kind": "capacity", "kl.schedule.c_max": 10},
                 {"kl.schedule.beta": 3}, {}]
    points = apply_overrides(BASE, overrides)
    assert [p["index"] for p in points] == [0, 1, 2]
    specs = validate_points(points, source="overrides")
    assert specs[0].kl.schedule.c_max == 10 and specs[1].kl.schedule.beta == 3
    assert specs[2].kl.schedule.beta == 0.5


def test_explicit_override_errors_name_the_entry():
    points = apply_overrides(BASE, [{"train.seed": 0}, {"kl.schedule.betaa": 1}])
    errs = errors_of(validate_points, points, source="overrides")
    assert list(errs) == ["overrides[1].kl.schedule.betaa"]
    errs = errors_of(apply_overrides, BASE, [{"train.seed": 0}, 3, {"a..b": 1}])
    assert set(errs) == {"overrides[1]", "overrides[2].a..b"}
    assert "empty" in errors_of(apply_overrides, BASE, [])["overrides"]
    assert "limit of 2" in errors_of(apply_overrides, BASE, [{}] * 3, max_points=2)["overrides"]


def test_build_sweep_returns_resolved_specs():
    points = build_sweep(BASE, grid={"kl.schedule.beta": [0.1, 1.0]})
    assert points[0]["overrides"] == {"kl.schedule.beta": 0.1}
    assert points[0]["spec"]["optim"]["lr"] == 1e-3  # defaults filled in
    assert TrainSpec.model_validate(points[1]["spec"]).kl.schedule.beta == 1.0
    assert build_sweep(BASE, overrides=[{"train.seed": 4}])[0]["spec"]["train"]["seed"] == 4
    assert "exactly one" in errors_of(build_sweep, BASE)["grid"]
    errs = errors_of(build_sweep, BASE, grid={"train.seed": [0]}, overrides=[{}])
    assert "exactly one" in errs["grid"]


def test_sweep_module_does_not_import_torch():
    # the API expands and validates sweeps at request time without loading torch
    import subprocess
    import sys

    code = "import sys, vae_engine.spec.sweep; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_grid_over_a_dataset_field_that_only_some_members_have():
    # dataset members share the Literal field `binarize`; the discriminator is still `name`.
    from vae_engine.spec import build_sweep

    base = {"dataset": {"name": "npz", "path": "/data/a.npz"}}
    points = build_sweep(base, grid={"dataset.path": ["/data/a.npz", "/data/b.npz"],
                                     "dataset.binarize": ["none", "static"]})
    assert [(p["spec"]["dataset"]["path"], p["spec"]["dataset"]["binarize"]) for p in points] == [
        ("/data/a.npz", "none"), ("/data/a.npz", "static"),
        ("/data/b.npz", "none"), ("/data/b.npz", "static")]
