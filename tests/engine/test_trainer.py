"""The training loop: outputs, determinism, exact resume, stop flag, NaN guard, reductions."""

import json
import math

import pytest
import torch

from vae_engine import load_checkpoint, train
from vae_engine.errors import NonFiniteLossError
from vae_engine.io import ListSink, LocalArtifacts
from vae_engine.spec import parse_spec

TRAIN_KEYS = {"loss", "distortion", "rate", "elbo", "beta_effective", "grad_norm", "lr",
              "examples_per_s"}
SUMMARY_KEYS = {"elbo", "rate", "distortion", "bits_per_dim", "iwae", "active_units",
                "mutual_information", "marginal_kl", "kl_per_unit"}


def _strip(points):
    # examples_per_s is wall-clock; everything else must replay exactly.
    return [(s, {k: v for k, v in m.items() if k != "examples_per_s"}) for s, m in points]


def test_run_logs_and_writes_everything(tiny_spec, tmp_path):
    sink = ListSink()
    res = train(tiny_spec, sink, LocalArtifacts(tmp_path))
    assert res.status == "completed" and res.step == res.total_steps == 24  # 2 x ceil(1501/128)
    train_points = [m for _, m in sink.points if "loss" in m]
    assert train_points and TRAIN_KEYS <= set(train_points[0])
    assert [s for s, m in sink.points if "loss" in m][:3] == [2, 4, 6]
    assert SUMMARY_KEYS <= set(res.summary)
    assert all(math.isfinite(res.summary[k]) for k in SUMMARY_KEYS - {"kl_per_unit"})
    assert len(res.summary["kl_per_unit"]) == 4
    assert len(sink.evals) == 2  # after epoch 1 and the final one
    for folder in ("checkpoints", "samples", "recon"):
        assert any((tmp_path / folder).iterdir())
    assert (tmp_path / "checkpoints" / "step_00000024.safetensors").is_file()
    png = (tmp_path / "samples" / "samples_00000024.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_run(tiny_spec):
    a, b = ListSink(), ListSink()
    train(tiny_spec, a)
    train(tiny_spec, b)
    assert _strip(a.points) == _strip(b.points)
    tiny_spec["train"]["seed"] = 1
    c = ListSink()
    train(tiny_spec, c)
    assert _strip(c.points) != _strip(a.points)


@pytest.mark.parametrize("likelihood", [
    {"kind": "bernoulli"},
    {"kind": "gaussian", "sigma": "learned_shared"},
])
def test_resume_reproduces_the_uninterrupted_run(tiny_spec, tmp_path, likelihood):
    tiny_spec["likelihood"] = likelihood
    tiny_spec["train"]["epochs"] = 3
    full = ListSink()
    ref = train(tiny_spec, full, LocalArtifacts(tmp_path / "full"))

    # Stop mid-epoch 2 (step 17), then resume from the checkpoint the stop wrote.
    calls = {"n": 0}

    def stop_at_17():
        calls["n"] += 1
        return calls["n"] == 17

    first = ListSink()
    stopped = train(tiny_spec, first, LocalArtifacts(tmp_path / "part"), should_stop=stop_at_17)
    assert stopped.status == "stopped" and stopped.step == 17
    assert stopped.last_checkpoint.endswith("step_00000017.safetensors")
    second = ListSink()
    res = train(tiny_spec, second, LocalArtifacts(tmp_path / "part"),
                resume_from=stopped.last_checkpoint)
    combined = _strip(first.points) + _strip(second.points)
    assert combined == _strip(full.points)
    assert res.summary["elbo"] == ref.summary["elbo"]
    assert res.summary["iwae"] == ref.summary["iwae"]


def test_resume_refuses_a_checkpoint_of_another_spec(tiny_spec, tmp_path):
    res = train(tiny_spec, None, LocalArtifacts(tmp_path))
    tiny_spec["model"]["latent_dim"] = 5
    with pytest.raises(Exception, match="different spec"):
        train(tiny_spec, None, resume_from=res.last_checkpoint)


def test_resume_accepts_a_checkpoint_written_before_a_spec_field_existed(tiny_spec, tmp_path):
    # A checkpoint's embedded spec lacks a field added since (here train.keep_checkpoints and
    # eval.metrics, dropped from its metadata): with their defaults it is the same spec.
    from safetensors.torch import save

    from vae_engine.checkpoint import read_checkpoint

    stopped = train(tiny_spec, None, LocalArtifacts(tmp_path), should_stop=lambda: True)
    tensors, meta = read_checkpoint(stopped.last_checkpoint)
    meta["spec"]["train"].pop("keep_checkpoints")
    meta["spec"]["eval"].pop("metrics")
    old = tmp_path / "old.safetensors"
    old.write_bytes(save(tensors, metadata={"vaelab": json.dumps(meta)}))
    res = train(tiny_spec, None, LocalArtifacts(tmp_path / "resumed"), resume_from=str(old))
    assert res.status == "completed" and res.step == res.total_steps > stopped.step


def test_non_finite_loss_names_step_and_checkpoint(tiny_spec, tmp_path):
    tiny_spec["optim"]["lr"] = 10.0  # blows up within a few steps
    tiny_spec["likelihood"] = {"kind": "gaussian", "sigma": "learned_per_pixel"}
    tiny_spec["train"]["epochs"] = 50
    with pytest.raises(NonFiniteLossError) as info:
        train(tiny_spec, None, LocalArtifacts(tmp_path))
    assert info.value.step >= 1
    assert f"step {info.value.step}" in str(info.value)
    assert "last good checkpoint" in str(info.value)


def test_mean_reduction_logs_beta_in_sum_units(tiny_spec):
    tiny_spec["kl"] = {"schedule": {"kind": "constant", "beta": 0.5}, "reduction": "mean"}
    sink = ListSink()
    train(tiny_spec, sink)
    n, m = 64, 4
    betas = [v for _, v in sink.series("beta_effective")]
    assert betas and all(b == pytest.approx(0.5 * n / m) for b in betas)


def test_beta_norm_and_warmup_weights(tiny_spec):
    tiny_spec["kl"] = {"schedule": {"kind": "beta_norm", "beta_norm": 0.25}}
    sink = ListSink()
    train(tiny_spec, sink)
    betas = [v for _, v in sink.series("beta_effective")]
    assert betas and all(b == pytest.approx(0.25 * 64 / 4) for b in betas)
    tiny_spec["kl"] = {"schedule": {"kind": "linear_warmup", "anneal_portion": 0.5,
                                    "const_portion": 0.0, "min_weight": 0.0}}
    sink = ListSink()
    train(tiny_spec, sink)
    series = sink.series("beta_effective")
    # logged at completed step s -> the weight used at 0-based step s-1; T = 24, t_anneal = 12
    for s, v in series:
        assert v == pytest.approx(min((s - 1) / 12, 1.0))


def test_checkpoint_alone_rebuilds_a_sampling_model(tiny_spec, tmp_path):
    res = train(tiny_spec, None, LocalArtifacts(tmp_path))
    ck = load_checkpoint(res.last_checkpoint)
    assert ck.step == res.step and ck.spec == parse_spec(tiny_spec)
    imgs = ck.sample(5, seed=0)
    assert imgs.shape == (5, 1, 8, 8) and 0 <= imgs.min() and imgs.max() <= 1
    again = ck.sample(5, seed=0)
    assert torch.equal(imgs, again)
    x = torch.rand(3, 1, 8, 8)
    assert ck.reconstruct(x, seed=0).shape == (3, 1, 8, 8)


def test_conv_architecture_trains_and_rejects_bad_sizes(tiny_spec):
    tiny_spec["model"] = {"arch": "conv", "latent_dim": 4, "channels": [8, 16], "hidden": 32}
    res = train(tiny_spec, None)
    assert math.isfinite(res.summary["elbo"])
    tiny_spec["model"]["channels"] = [8, 8, 8, 8]
    with pytest.raises(Exception, match="model.channels"):
        train(tiny_spec, None)


@pytest.mark.parametrize("epochs,every", [(3, 1), (4, 2), (3, 0)])
def test_the_planned_evaluations_are_the_ones_that_run(tiny_spec, epochs, every):
    """MetricSink.plan announces exactly the steps log_eval is then called at."""

    class PlanSink(ListSink):
        def plan(self, eval_steps):
            self.planned = list(eval_steps)

    tiny_spec["train"].update(epochs=epochs, eval_every_epochs=every)
    sink = PlanSink()
    train(tiny_spec, sink)
    assert sink.planned == [step for step, _summary in sink.evals]
