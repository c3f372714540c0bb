"""The training step never reads a tensor on the host (issue 14), for every registered KL
scheme, estimator and modifier; the non-finite guard still names the exact step; the
compiled step gives the eager step's metrics."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import vae_engine.trainer as trainer
from vae_engine import train
from vae_engine.errors import NonFiniteLossError
from vae_engine.io import ListSink, LocalArtifacts
from vae_engine.kl import SCHEMES

from .conftest import TINY

# Every way a tensor becomes a Python number (each one waits for the device).
CONVERSIONS = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__")
HIER = {"arch": "hierarchical", "channels": 8, "groups_per_scale": [2, 2]}


def _variants() -> list[tuple[str, dict]]:
    """(id, spec overrides): every schedule with each of its catalogue examples, the
    estimators and modifiers, and a likelihood that logs a learned sigma."""
    out = []
    for entry in SCHEMES.entries():
        for i, example in enumerate(entry.config.examples):
            out.append((f"{entry.name}-{i}", {"kl": {"schedule": {"kind": entry.name,
                                                                   **example}}}))
    out += [
        ("batch_stats+dual_ascent", {"kl": {"schedule": {"kind": "dual_ascent",
                                                         "target_rate": 5.0},
                                            "estimator": "batch_stats"}}),
        ("free_bits+capacity", {"kl": {"schedule": {"kind": "capacity"},
                                       "free_bits": {"lambda": 0.5}}}),
        ("per_sample_free_bits+mean", {"kl": {"schedule": {"kind": "constant"},
                                              "free_bits": {"average": "per_sample"},
                                              "reduction": "mean"}}),
        ("nvae_balancing+hierarchical", {"model": HIER, "kl": {
            "schedule": {"kind": "linear_warmup"}, "balancing": {"kind": "nvae"}}}),
        ("gaussian_learned", {"likelihood": {"kind": "gaussian", "sigma": "learned_shared"},
                              "kl": {"schedule": {"kind": "pi_controller"}}}),
    ]
    return out


def _spec(overrides: dict) -> dict:
    spec = copy.deepcopy(TINY)
    spec.update(copy.deepcopy(overrides))
    spec["train"].update(epochs=1, max_steps=6, log_every=3, eval_every_epochs=0,
                         checkpoint_every_epochs=0)
    spec["eval"].update(iwae_k=1, max_examples=16, metrics=[])
    return spec


@pytest.mark.parametrize("overrides", [v for _, v in _variants()],
                         ids=[k for k, _ in _variants()])
def test_the_step_converts_no_tensor_to_a_python_number(overrides, monkeypatch):
    calls: dict[str, int] = {}
    state = {"in_step": False, "steps": 0}
    for name in CONVERSIONS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _name=name, _original=original, **kwargs):
            if state["in_step"]:
                calls[_name] = calls.get(_name, 0) + 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    step = trainer.train_step

    def watched(*args, **kwargs):
        state["in_step"] = True
        try:
            return step(*args, **kwargs)
        finally:
            state["in_step"] = False
            state["steps"] += 1

    monkeypatch.setattr(trainer, "train_step", watched)
    sink = ListSink()
    train(_spec(overrides), sink, read_every=6)
    assert state["steps"] == 6  # the counter did watch the steps: logged and not
    assert [s for s, m in sink.points if "loss" in m] == [3, 6]
    assert calls == {}, f"the step read tensors on the host: {calls}"


def test_the_counter_sees_a_read():
    """The patch above does catch a conversion (so an empty count means something)."""
    seen = []
    original = torch.Tensor.__float__

    def counting(self):
        seen.append(1)
        return original(self)

    torch.Tensor.__float__ = counting
    try:
        float(torch.tensor(1.5))
    finally:
        torch.Tensor.__float__ = original
    assert seen == [1]


def test_metric_streams_do_not_depend_on_the_read_interval(tiny_spec):
    tiny_spec["kl"] = {"schedule": {"kind": "geco", "kappa": 30.0, "lr": 0.01}}
    tiny_spec["train"]["log_every"] = 1
    every, rarely = ListSink(), ListSink()
    train(tiny_spec, every, read_every=1)
    train(tiny_spec, rarely, read_every=1000)

    def strip(points):
        return [(s, {k: v for k, v in m.items() if k != "examples_per_s"}) for s, m in points]

    assert strip(every.points) == strip(rarely.points)
    assert len([p for p in every.points if "loss" in p[1]]) == 24


def _blow_up(spec: dict) -> dict:
    spec["optim"]["lr"] = 10.0  # non-finite within a few steps
    spec["likelihood"] = {"kind": "gaussian", "sigma": "learned_per_pixel"}
    spec["train"].update(epochs=50, log_every=1)
    return spec


def test_a_non_finite_loss_is_named_at_its_exact_step_despite_the_lag(tiny_spec, tmp_path):
    """Reading the flag after every step and every 1000 steps names the same step, logs the
    same points before it, and leaves the weights of the last good step."""
    results = {}
    for read_every in (1, 1000):
        sink = ListSink()
        with pytest.raises(NonFiniteLossError) as info:
            train(_blow_up(copy.deepcopy(tiny_spec)), sink,
                  LocalArtifacts(tmp_path / str(read_every)), read_every=read_every)
        results[read_every] = (info.value.step, [s for s, m in sink.points if "loss" in m])
    step, logged = results[1]
    assert results[1000] == (step, logged)
    assert step >= 2 and logged == list(range(1, step))  # every good step, none after
    assert "last good checkpoint" in str(info.value)


def test_after_a_non_finite_loss_the_weights_stay_those_of_the_last_good_step(
        tiny_spec, monkeypatch):
    """The loop runs on for up to read_every steps after the bad one; none of them moves
    the weights: they end as they were before the first non-finite step."""
    seen: dict = {}
    setup, step_fn = trainer.setup, trainer.train_step

    def capture_setup(*args, **kwargs):
        seen["run"] = setup(*args, **kwargs)
        return seen["run"]

    def snapshotting_step(run, x, step, guard, **kwargs):
        if not bool(guard.bad):  # outside the step: the last state before a bad step
            seen["good"] = [p.detach().clone() for p in run.params]
            seen["good_step"] = step
        seen["last_step"] = step
        return step_fn(run, x, step, guard, **kwargs)

    monkeypatch.setattr(trainer, "setup", capture_setup)
    monkeypatch.setattr(trainer, "train_step", snapshotting_step)
    with pytest.raises(NonFiniteLossError) as info:
        train(_blow_up(tiny_spec), None, read_every=50)
    assert info.value.step == seen["good_step"] + 1  # the first bad step, 1-based
    assert seen["last_step"] > seen["good_step"]  # steps did run after it
    assert all(bool(torch.isfinite(a).all()) for a in seen["good"])  # a good state indeed
    assert all(torch.equal(a, b) for a, b in zip(seen["good"], seen["run"].params, strict=True))


def test_compiled_and_eager_runs_log_the_same_metrics(tiny_spec):
    """torch.compile (inductor on this CPU) against eager, same seed: every logged metric
    within float tolerance, the same steps, the same final ELBO to 1e-3 relative."""
    tiny_spec["kl"] = {"schedule": {"kind": "dual_ascent", "target_rate": 5.0,
                                    "step_size": 0.01}}
    tiny_spec["train"].update(epochs=1, max_steps=8, eval_every_epochs=0,
                              checkpoint_every_epochs=0, log_every=1)  # full batches: one
    # compilation
    tiny_spec["eval"].update(iwae_k=1, metrics=[])
    eager, compiled = ListSink(), ListSink()
    a = train(tiny_spec, eager)
    tiny_spec["train"]["compile"] = True
    b = train(tiny_spec, compiled)
    pa = [(s, m) for s, m in eager.points if "loss" in m]
    pb = [(s, m) for s, m in compiled.points if "loss" in m]
    assert [s for s, _ in pa] == [s for s, _ in pb] == list(range(1, 9))
    for (_, ma), (_, mb) in zip(pa, pb, strict=True):
        assert set(ma) == set(mb)
        for key in ma.keys() - {"examples_per_s"}:
            assert mb[key] == pytest.approx(ma[key], rel=1e-3, abs=1e-4), key
    assert math.isfinite(b.summary["elbo"])
    assert b.summary["elbo"] == pytest.approx(a.summary["elbo"], rel=1e-3)


def test_bf16_autocast_trains_close_to_float32(tiny_spec):
    """train.bf16 (meant for GPUs) also runs on a CPU: float32 loss terms and logs, an ELBO
    within 5% of the float32 run's after one epoch."""
    tiny_spec["train"].update(epochs=1, eval_every_epochs=0, checkpoint_every_epochs=0)
    tiny_spec["eval"].update(iwae_k=1, metrics=[])
    ref, low = ListSink(), ListSink()
    a = train(tiny_spec, ref)
    tiny_spec["train"]["bf16"] = True
    b = train(tiny_spec, low)
    assert [s for s, m in low.points if "loss" in m] == [s for s, m in ref.points if "loss" in m]
    assert all(math.isfinite(v) for _, m in low.points for v in m.values())
    assert b.summary["elbo"] == pytest.approx(a.summary["elbo"], rel=0.05)
    assert b.summary["elbo"] != a.summary["elbo"]  # it did run in bfloat16
