"""The spec is the public contract: the issue's reference document must parse, and every bad
field must be named at once."""

from pathlib import Path

import pytest
import yaml

from vae_engine.errors import SpecError
from vae_engine.spec import TrainSpec, load_spec, parse_spec, spec_json_schema

ROOT = Path(__file__).resolve().parents[2]

REFERENCE = """
name: beta-vae-mnist
dataset: {name: mnist5k, binarize: dynamic}
model: {arch: mlp, latent_dim: 16, hidden: [512]}
likelihood: {kind: bernoulli}
kl:
  schedule: {kind: constant, beta: 1.0}
  reduction: sum
optim: {lr: 0.001, batch_size: 64}
train: {epochs: 10, seed: 0, log_every: 50, eval_every_epochs: 1, checkpoint_every_epochs: 1}
eval: {iwae_k: 1000, max_examples: 1000}
"""


def test_reference_document_is_accepted():
    spec = parse_spec(yaml.safe_load(REFERENCE))
    assert spec.dataset.name == "mnist5k" and spec.dataset.binarize == "dynamic"
    assert spec.model.latent_dim == 16 and spec.model.hidden == [512]
    assert spec.kl.schedule.kind == "constant" and spec.kl.schedule.beta == 1.0
    assert spec.eval.iwae_k == 1000


def test_reference_example_file_matches_issue_document():
    assert load_spec(ROOT / "examples" / "mnist_beta_vae.yaml") == parse_spec(
        yaml.safe_load(REFERENCE))


@pytest.mark.parametrize("doc", [
    {"likelihood": {"kind": "gaussian", "sigma": "optimal_per_image", "sigma_value": 1.0}},
    {"likelihood": {"kind": "continuous_bernoulli"}},
    {"model": {"arch": "conv", "latent_dim": 8, "channels": [16, 32]}},
    {"kl": {"schedule": {"kind": "beta_norm", "beta_norm": 0.5}}},
    {"kl": {"schedule": {"kind": "linear_warmup"}, "reduction": "mean"}},
    {"dataset": {"name": "shapes", "size": 32}},
    {"dataset": {"name": "npz", "path": "/tmp/x.npz", "binarize": "static"}},
])
def test_variants_parse(doc):
    spec = parse_spec(doc)
    assert isinstance(spec, TrainSpec)


def test_every_bad_field_is_named_at_once():
    bad = yaml.safe_load(REFERENCE)
    bad["kl"]["schedule"]["beta"] = -1
    bad["optim"]["lr"] = 0
    bad["train"]["epochs"] = "ten"
    bad["model"]["hidden"] = [512, -3]
    bad["eval"]["bogus"] = 1
    with pytest.raises(SpecError) as info:
        parse_spec(bad)
    fields = {e["field"] for e in info.value.errors}
    assert fields == {"kl.schedule.beta", "optim.lr", "train.epochs", "model.hidden.1",
                      "eval.bogus"}
    assert "kl.schedule.beta" in str(info.value)


def test_unknown_union_member_lists_the_valid_ones():
    with pytest.raises(SpecError) as info:
        parse_spec({"kl": {"schedule": {"kind": "nope"}}})
    (err,) = info.value.errors
    assert err["field"] == "kl.schedule"
    assert "constant" in err["message"] and "linear_warmup" in err["message"]


def test_gaussian_sigma_mode_is_validated():
    with pytest.raises(SpecError) as info:
        parse_spec({"likelihood": {"kind": "gaussian", "sigma": "wobbly"}})
    assert info.value.errors[0]["field"] == "likelihood.sigma"


def test_load_spec_file_errors(tmp_path):
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("dataset: {name: [\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(broken)
    as_list = tmp_path / "list.yaml"
    as_list.write_text("- 1\n- 2\n")
    with pytest.raises(SpecError, match="mapping"):
        load_spec(as_list)


def test_json_spec_and_schema(tmp_path):
    import json

    p = tmp_path / "s.json"
    p.write_text(json.dumps(yaml.safe_load(REFERENCE)))
    assert load_spec(p).name == "beta-vae-mnist"
    schema = spec_json_schema()
    assert set(schema["properties"]) >= {"dataset", "model", "likelihood", "kl", "optim",
                                         "train", "eval"}
    json.dumps(schema)
