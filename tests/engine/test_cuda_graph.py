"""``train.cuda_graph``: the whole step captured as a CUDA graph (vae_engine/graphed.py).

The first tests run everywhere (the option's checks); the others need CUDA and skip without
it (CI has none): every KL scheme, estimator and modifier logs the eager step's metrics
when graphed, the non-finite guard names the same step, and compile and bf16 combine."""

from __future__ import annotations

import copy
import logging
import math

import pytest
import torch

from vae_engine import train
from vae_engine.errors import NonFiniteLossError, SpecError
from vae_engine.graphed import graph_problems
from vae_engine.io import ListSink
from vae_engine.kl import KLScheme
from vae_engine.spec import parse_spec

from .test_no_sync import _spec, _variants

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_cuda_graph_on_a_cpu_spec_is_refused_naming_the_field(tiny_spec):
    tiny_spec["train"].update(cuda_graph=True, device="cpu")
    with pytest.raises(SpecError) as info:
        parse_spec(tiny_spec)
    assert info.value.errors == [{"field": "train.cuda_graph",
                                  "message": "needs a CUDA device; train.device is cpu"}]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_cuda_graph_without_a_gpu_fails_before_the_first_step(tiny_spec):
    tiny_spec["train"]["cuda_graph"] = True  # device auto: the CPU here
    sink = ListSink()
    with pytest.raises(SpecError) as info:
        train(tiny_spec, sink)
    assert info.value.errors[0]["field"] == "train.cuda_graph"
    assert not [p for p in sink.points if "loss" in p[1]]


def test_a_scheme_with_its_own_objective_must_say_it_is_graph_safe():
    class Mine(KLScheme):
        def objective(self, distortion, rate, step):  # may read the step on the host
            return distortion + rate * (step % 2), {"beta": float(step % 2)}

    class Cuda:
        type = "cuda"

    class Run:
        device, scheme = Cuda(), Mine(None, None)

    problems = graph_problems(Run())
    assert [p["field"] for p in problems] == ["train.cuda_graph"]
    assert "Mine is not marked graph_safe" in problems[0]["message"]
    Mine.graph_safe = True
    assert graph_problems(Run()) == []


def test_unset_captures_where_it_can_and_true_insists(tiny_spec):
    """train.cuda_graph unset: a run that cannot be captured trains eagerly; true: it is an
    error naming the field and the reason."""
    from vae_engine.graphed import make_stepper
    from vae_engine.trainer import setup, train_step

    class Mine(KLScheme):
        def objective(self, distortion, rate, step):
            return distortion + rate, {"beta": 1.0}

    run = setup(parse_spec(tiny_spec), device="cpu")
    run.device = torch.device("cuda")  # what make_stepper reads; nothing here runs on it
    run.scheme = Mine(None, None)
    assert make_stepper(run, None, train_step) is train_step  # unset: eager
    run.spec.train.cuda_graph = True
    with pytest.raises(SpecError, match="Mine is not marked graph_safe"):
        make_stepper(run, None, train_step)
    run.spec.train.cuda_graph = False
    assert make_stepper(run, None, train_step) is train_step


# ------------------------------------------------------------------------------ on a GPU


def _graph_spec(overrides: dict) -> dict:
    spec = _spec(overrides)  # 6 steps: too few to replay; 30 with logged and unlogged ones
    spec["train"].update(max_steps=30, log_every=2, device="cuda")
    return spec


def _run(spec: dict, caplog: pytest.LogCaptureFixture, graphed: bool) -> tuple[list, int]:
    spec = copy.deepcopy(spec)
    spec["train"]["cuda_graph"] = graphed
    sink = ListSink()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vae_engine.graphed"):
        train(spec, sink)
    captures = sum("captured a CUDA graph" in r.getMessage() for r in caplog.records)
    return [(s, {k: v for k, v in m.items() if k != "examples_per_s"})
            for s, m in sink.points if "loss" in m], captures


def _assert_same_points(eager: list, graphed: list) -> None:
    assert [s for s, _ in graphed] == [s for s, _ in eager]
    for (step, a), (_, b) in zip(eager, graphed, strict=True):
        assert a.keys() == b.keys(), step
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=1e-3, abs=1e-5), (step, k)


GRAPH_VARIANTS = [*_variants(), ("grad_clip", {"optim": {"lr": 1e-3, "batch_size": 128,
                                                                  "grad_clip": 1.0}})]


@gpu
@pytest.mark.parametrize("overrides", [v for _, v in GRAPH_VARIANTS],
                         ids=[name for name, _ in GRAPH_VARIANTS])
def test_graphed_steps_log_the_eager_steps_metrics(overrides, caplog):
    spec = _graph_spec(overrides)
    eager, none = _run(spec, caplog, graphed=False)
    graphed, captures = _run(spec, caplog, graphed=True)
    assert none == 0 and captures >= 2  # a logged and an unlogged step were replayed
    _assert_same_points(eager, graphed)


@gpu
def test_a_non_finite_loss_is_named_at_the_same_step_when_graphed(tiny_spec):
    """A sigmoid weight that rises e^10-fold per step overflows the gradient near its t0
    (step 19 on the CPU too), well after the eager warm-up: the graphed run's device flag
    names the eager run's step and logs the same good steps before it."""
    tiny_spec["train"].update(epochs=50, max_steps=200, log_every=1, eval_every_epochs=0,
                              checkpoint_every_epochs=0, device="cuda")
    tiny_spec["kl"] = {"schedule": {"kind": "sigmoid", "beta_max": 1e30, "k": 10, "t0": 20}}
    seen = {}
    for graphed in (False, True):
        sink = ListSink()
        with pytest.raises(NonFiniteLossError) as info:
            train({**tiny_spec, "train": {**tiny_spec["train"], "cuda_graph": graphed}}, sink)
        seen[graphed] = info.value.step, [s for s, m in sink.points if "loss" in m]
    assert seen[True] == seen[False]
    assert seen[True][0] > 10 and seen[True][1] == list(range(1, seen[True][0]))


@gpu
@pytest.mark.parametrize("flags", [{"compile": True}, {"bf16": True}],
                         ids=["compile", "bf16"])
def test_graph_capture_combines_with_compile_and_bf16(flags, caplog):
    spec = _graph_spec({"kl": {"schedule": {"kind": "dual_ascent", "target_rate": 5.0}}})
    spec["train"].update(flags)
    eager, _ = _run(spec, caplog, graphed=False)
    graphed, captures = _run(spec, caplog, graphed=True)
    assert captures >= 2
    assert all(math.isfinite(m["loss"]) for _, m in graphed)
    if "bf16" in flags:  # bf16 rounding differs with kernel choice: close, not equal
        assert graphed[-1][1]["elbo"] == pytest.approx(eager[-1][1]["elbo"], rel=0.05)
    else:
        _assert_same_points(eager, graphed)
