"""The component catalogue, the generated docs/schemes.md, and the example specs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest

from vae_engine.catalogue import catalogue, render_markdown, splice_readme
from vae_engine.data import DATASETS
from vae_engine.kl import ESTIMATORS, MODIFIERS, SCHEMES
from vae_engine.likelihoods import LIKELIHOODS
from vae_engine.likelihoods.gaussian import SigmaMode
from vae_engine.models import ARCHITECTURES
from vae_engine.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def test_catalogue_is_json_and_complete():
    cat = json.loads(json.dumps(catalogue()))
    for section, registry in (("schedules", SCHEMES), ("architectures", ARCHITECTURES),
                              ("likelihoods", LIKELIHOODS), ("datasets", DATASETS),
                              ("modifiers", MODIFIERS), ("estimators", ESTIMATORS)):
        assert [e["name"] for e in cat[section]] == [r.name for r in registry.entries()]
    assert {e["field"] for e in cat["modifiers"]} == {"kl.free_bits", "kl.balancing"}
    for section in ("datasets", "architectures", "likelihoods", "schedules", "modifiers"):
        for e in cat[section]:
            assert e["summary"], (section, e["name"])
            for p in e["parameters"]:
                assert {"name", "type", "required", "default", "description", "bounds"} <= set(p)
    for e in cat["schedules"] + cat["modifiers"]:
        assert e["paper"], e["name"]
        for p in e["parameters"]:
            assert p["description"], (e["name"], p["name"])


def test_catalogue_carries_spec_defaults_and_bounds():
    cat = catalogue()
    sched = {e["name"]: {p["name"]: p for p in e["parameters"]} for e in cat["schedules"]}
    assert sched["capacity"]["gamma"]["default"] == 1000.0
    assert sched["sigmoid"]["k"]["default"] == 0.0025
    assert sched["cyclical"]["shape"]["choices"] == ["linear", "sigmoid", "cosine"]
    assert sched["cyclical"]["ratio"]["bounds"] == {"exclusiveMinimum": 0, "maximum": 1}
    assert sched["geco"]["kappa"]["required"] is True
    assert sched["pi_controller"]["beta_min"]["type"] == "float | null"
    assert {e["name"]: e["stateful"] for e in cat["schedules"]}["dual_ascent"] is True
    fb = {p["name"]: p for p in cat["modifiers"][0]["parameters"]}
    assert fb["lambda"]["default"] == 0.25
    hier = next(e for e in cat["architectures"] if e["name"] == "hierarchical")
    assert {p["name"]: p for p in hier["parameters"]}["groups_per_scale"]["default"] == [2, 2]


def test_committed_doc_is_up_to_date():
    doc = (ROOT / "docs" / "schemes.md").read_text()
    assert doc == render_markdown(), "regenerate: python scripts/gen_schemes_doc.py"


def test_readme_component_table_is_up_to_date():
    readme = (ROOT / "README.md").read_text()
    assert readme == splice_readme(readme), "regenerate: python scripts/gen_schemes_doc.py"


def test_an_example_for_every_scheme_and_likelihood():
    specs = [load_spec(p) for p in EXAMPLES]
    assert {s.kl.schedule.kind for s in specs} == set(SCHEMES.names())
    assert {"multiplier", "genesis"} <= {s.kl.schedule.form for s in specs
                                        if s.kl.schedule.kind == "geco"}
    liks = {s.likelihood.kind for s in specs}
    assert {e["name"] for e in catalogue()["likelihoods"]} <= liks
    sigmas = {s.likelihood.sigma for s in specs if s.likelihood.kind == "gaussian"}
    assert sigmas == set(get_args(SigmaMode))
    assert any(s.kl.free_bits for s in specs) and any(s.kl.balancing for s in specs)
    assert any(s.kl.estimator == "batch_stats" for s in specs)


@pytest.mark.slow
def test_examples_run(tmp_path):
    """Each example trains for 4 steps on CPU (one per cycle of the cyclical example) and
    evaluates on 16 examples."""
    from vae_engine import train
    from vae_engine.io import ListSink

    for path in EXAMPLES:
        spec = load_spec(path).model_dump(mode="json")
        spec["train"].update(max_steps=4, eval_every_epochs=0, checkpoint_every_epochs=0,
                             device="cpu")
        # the final-evaluation metrics are tested in test_eval_metrics.py; here they would
        # cost more than the 4 training steps
        spec["eval"].update(iwae_k=2, max_examples=16, n_samples=4, metrics=[])
        if spec["dataset"]["name"] == "shapes":
            spec["dataset"].update(n_train=256, n_test=64)
        sink = ListSink()
        result = train(spec, sink)
        assert result.status == "completed", path.stem
        assert sink.series("beta_effective"), path.stem


def test_package_exports_the_catalogue_function():
    # Importing the submodule vae_engine.catalogue binds the *module* to the package
    # attribute; the package must still hand out the function.
    import subprocess
    import sys

    code = ("from vae_engine import train, parse_spec, load_checkpoint, catalogue\n"
            "print(sorted(catalogue()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "'schedules'" in out.stdout
