"""CUDA path: skipped on machines without a GPU (CI has none)."""

import math

import pytest
import torch

from vae_engine import train
from vae_engine.io import ListSink, LocalArtifacts
from vae_engine.trainer import setup

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_data_model_and_training_live_on_the_gpu(tiny_spec, tmp_path):
    from vae_engine.spec import parse_spec

    run = setup(parse_spec(tiny_spec), device="cuda")
    assert run.data.x_train.is_cuda and next(run.model.parameters()).is_cuda
    sink = ListSink()
    res = train(tiny_spec, sink, LocalArtifacts(tmp_path), device="cuda")
    assert res.status == "completed" and math.isfinite(res.summary["iwae"])
    from vae_engine import load_checkpoint

    ck = load_checkpoint(res.last_checkpoint)  # a GPU checkpoint loads on the CPU
    assert ck.sample(4, seed=0).shape == (4, 1, 8, 8)


def test_no_sync_step_bf16_and_compile_on_the_gpu(tiny_spec):
    """The flags meant for GPUs, on one: bf16 autocast and compile train to a finite ELBO
    close to the float32 eager run's."""
    tiny_spec["train"].update(epochs=1, eval_every_epochs=0, checkpoint_every_epochs=0)
    tiny_spec["eval"].update(iwae_k=1, metrics=[])
    ref = train(tiny_spec, None, device="cuda").summary["elbo"]
    for flags in ({"bf16": True}, {"compile": True}, {"bf16": True, "compile": True}):
        spec = {**tiny_spec, "train": {**tiny_spec["train"], **flags}}
        elbo = train(spec, None, device="cuda").summary["elbo"]
        assert math.isfinite(elbo) and elbo == pytest.approx(ref, rel=0.05), flags
