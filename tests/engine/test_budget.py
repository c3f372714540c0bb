"""The spec budget estimator (vae_engine/spec/budget.py): its parameter counts against the
models actually built, the examples within the default limits, and the three specs the
issue found accepted over the limits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import tiny_spec
from vae_engine.models import ARCHITECTURES, build_model
from vae_engine.spec import load_spec, parse_spec
from vae_engine.spec.budget import Limits, estimate, over_budget

ROOT = Path(__file__).resolve().parents[2]
# the service's defaults (service/core/config.py)
DEFAULTS = Limits(max_parameters=1_000_000_000, max_activation_bytes=32 * 1024**3,
                  max_iwae_elements=4_000_000_000, max_logged_points=10_000_000)


@pytest.mark.parametrize("arch", ARCHITECTURES.names())
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_parameter_estimate_is_within_a_factor_of_two(arch: str, shape) -> None:  # noqa: ANN001
    config = ARCHITECTURES.config(arch)()
    out = 2 * shape[0]
    built = build_model(config, shape, out)
    real = sum(p.numel() for p in built.parameters())
    params, acts = config.size_estimate(shape, out)
    assert real / 2 <= params <= real * 2, (arch, params, real)
    assert acts > shape[0] * shape[1] * shape[2]


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_example_is_within_the_default_budget(path: Path) -> None:
    spec = load_spec(path)
    assert over_budget(spec, estimate(spec), DEFAULTS) == []


def test_the_test_specs_are_within_the_default_budget() -> None:
    spec = parse_spec(tiny_spec(epochs=30))
    assert over_budget(spec, estimate(spec), DEFAULTS) == []


def _problems(raw: dict) -> dict[str, str]:
    spec = parse_spec(raw)
    return {p["field"]: p["message"] for p in over_budget(spec, estimate(spec), DEFAULTS)}


def test_a_3e10_parameter_model_is_refused_naming_model_hidden() -> None:
    raw = tiny_spec()
    raw["dataset"] = {"name": "mnist5k"}
    raw["model"] = {"arch": "mlp", "hidden": [65536] * 8, "latent_dim": 4096}
    problems = _problems(raw)
    assert "model.hidden" in problems
    assert "6.1e+10 parameters" in problems["model.hidden"]
    assert "1e+09" in problems["model.hidden"] and "VAELAB_MAX_PARAMETERS" in \
        problems["model.hidden"]


def test_iwae_k_100000_is_refused_naming_eval_iwae_k() -> None:
    raw = tiny_spec()
    raw["eval"].update(iwae_k=100_000, max_examples=1000)
    problems = _problems(raw)
    assert list(problems) == ["eval.iwae_k"]
    assert "6.4e+09" in problems["eval.iwae_k"]


def test_100000_epochs_logged_every_step_is_refused_naming_log_every() -> None:
    problems = _problems(tiny_spec(epochs=100_000, log_every=1))
    assert list(problems) == ["train.log_every"]
    assert "2400000 steps" in problems["train.log_every"]
    assert "train.epochs 100000" in problems["train.log_every"]


def test_a_huge_batch_and_an_explicit_huge_iwae_chunk_are_refused() -> None:
    raw = tiny_spec()
    raw["dataset"] = {"name": "shapes", "size": 64}
    raw["model"] = {"arch": "hierarchical", "channels": 512}
    raw["optim"]["batch_size"] = 65536
    raw["eval"]["iwae_chunk"] = 10**9
    assert {"optim.batch_size", "eval.iwae_chunk"} <= set(_problems(raw))


def test_unknown_data_size_leaves_logged_points_to_max_steps() -> None:
    raw = tiny_spec(epochs=100_000, log_every=1)
    raw["dataset"] = {"name": "npz", "path": "x.npz"}
    spec = parse_spec(raw)
    assert estimate(spec).logged_points is None
    assert estimate(spec, train_examples=1501).logged_points == 28_800_000
    raw["train"]["max_steps"] = 1000
    assert estimate(parse_spec(raw)).logged_points == 12_000


def test_the_estimator_imports_no_torch() -> None:
    code = "import sys, vae_engine.spec.budget; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"
