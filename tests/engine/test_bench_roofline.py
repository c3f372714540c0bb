"""bench/roofline.py: the matmul list, FLOP count and floor behind engine_vs_pythae's roofline
figures describe the step the engine really runs."""

from __future__ import annotations

import collections
import copy
import importlib.util
import sys
import types
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[2]
B, D, H, Z = 64, 784, 512, 16  # the benchmark's MLP and batch


def _load(name: str):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(ROOT / "bench"))


class _Products(TorchDispatchMode):
    """(m, k, n) of every mm / addmm dispatched."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default):
            a, b = args[-2:]
            self.seen[(a.shape[0], a.shape[1], b.shape[1])] += 1
        return func(*args, **(kwargs or {}))


def _engine_step(bf16: bool = False):
    """Forward and backward of the engine's own model, likelihood and rate for the benchmark
    spec (engine_vs_pythae.engine_spec), on a batch of B."""
    from vae_engine.compiled import make_forward
    from vae_engine.likelihoods import build_likelihood
    from vae_engine.models import build_model
    from vae_engine.spec import parse_spec

    bench = _load("engine_vs_pythae")
    args = types.SimpleNamespace(latent=Z, lr=1e-3, batch=B, epochs=1, device="cpu",
                                 cuda_graph=None, bf16=bf16)
    spec = parse_spec(bench.engine_spec(args, 0))
    lik = build_likelihood(spec.likelihood)
    model = build_model(spec.model, (1, 28, 28), lik.params_per_dim)
    forward = make_forward(model, lik, False, bf16)
    x = torch.rand(B, 1, 28, 28)

    def step() -> None:
        distortion, rate, _ = forward(x)
        (distortion + rate).backward()

    return step


def test_the_listed_products_are_the_ones_the_engine_step_dispatches():
    roofline = _load("roofline")
    step = _engine_step()
    with _Products() as mode:
        step()
    expected = collections.Counter((m, k, n) for _, _, m, k, n in roofline.step_matmuls(B, D, H, Z))
    assert mode.seen == expected
    assert sum(expected.values()) == 14


def test_the_flop_count_matches_torch_flop_counter_on_the_engine_step():
    roofline = _load("roofline")
    step = _engine_step()
    with FlopCounterMode(display=False) as counter:
        step()
    counts = counter.get_flop_counts()["Global"]
    matmul = sum(v for op, v in counts.items() if "mm" in str(op))
    assert roofline.step_flops(B, D, H, Z) == matmul
    assert roofline.step_flops(B, D, H, Z) / B == 4_161_536  # the "about 4.15 MFLOP"


def test_measure_and_summarise_give_consistent_figures():
    roofline = _load("roofline")
    fig = roofline.measure(8, 20, 12, 3, reps=3, rounds=2)
    assert fig["peak_gflops"] > 0 and fig["adam_ms"] > 0
    assert len(fig["matmul_ms"]) == 14
    assert fig["floor_ms_per_step"] == pytest.approx(fig["matmul_floor_ms"] + fig["adam_ms"])
    assert fig["flops_per_example"] == roofline.step_flops(8, 20, 12, 3) / 8
    # 1,000 examples/s of pythae = 8 ms per step of 8; a 2 ms floor allows 4x
    fixed = {**fig, "floor_ms_per_step": 2.0, "peak_gflops": 10.0, "flops_per_example": 1e6}
    out = roofline.summarise(fixed, 8, engine_eps=3000.0, pythae_eps=1000.0,
                             fp32_peak_gflops=20.0)
    assert out["throughput_ratio_ceiling"] == pytest.approx(4.0)
    assert out["engine_fraction"] == pytest.approx(0.3)  # 3 GFLOP/s of 10
    assert out["pythae_fraction"] == pytest.approx(0.05)  # 1 GFLOP/s of the float32 20


def _reference_loss(params, x, eps):
    """The benchmark objective with autograd: batch mean of BCE-with-logits summed over
    pixels plus the Gaussian KL, for nn.Linear-shaped weights."""
    f = torch.nn.functional
    w1, b1, wm, bm, wl, bl, wd, bd, wo, bo = params
    h = f.relu(f.linear(x, w1, b1))
    mu, lv = f.linear(h, wm, bm), f.linear(h, wl, bl)
    z = mu + torch.exp(0.5 * lv) * eps
    logits = f.linear(f.relu(f.linear(z, wd, bd)), wo, bo)
    nll = f.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
    kl = 0.5 * (mu.square() + lv.exp() - 1 - lv).sum(1)
    return (nll + kl).mean()


def test_the_bare_step_computes_the_loss_and_gradients_autograd_gives():
    roofline = _load("roofline")
    b, d, h, z = 8, 20, 12, 3
    bare = roofline.BareStep(b, d, h, z, n_train=40)
    g = torch.Generator().manual_seed(1)
    x, eps = torch.rand(b, d, generator=g), torch.randn(b, z, generator=g)
    x[:, :5] = torch.bernoulli(x[:, :5])  # exact 0s and 1s as well as grey levels
    loss = bare.forward_backward(x, eps)
    ref_params = [p.detach().clone().requires_grad_() for p in bare.params]
    ref = _reference_loss(ref_params, x, eps)
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    for p, q in zip(bare.params, ref_params, strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6)
    # the ReLU masks matter: some hidden units are off for some examples
    assert 0 < (bare.a1 > 0).float().mean() < 1


def test_a_bare_step_is_one_adam_update_with_those_gradients():
    roofline = _load("roofline")
    b, d, h, z = 8, 20, 12, 3
    bare = roofline.BareStep(b, d, h, z, n_train=40)
    twin = [torch.nn.Parameter(p.detach().clone()) for p in bare.params]
    opt = torch.optim.Adam(twin, lr=1e-3)  # plain Adam, in the state BareStep's has now
    opt.load_state_dict(copy.deepcopy(bare.adam.optimizer.state_dict()))
    assert float(opt.state[twin[0]]["step"]) == 1
    torch.manual_seed(3)
    eps = torch.randn(b, z)
    torch.manual_seed(3)
    bare()  # batch 0 of its data, noise drawn like eps
    for q in twin:
        q.grad = None
    _reference_loss(twin, bare.x_train[:b], eps).backward()
    opt.step()
    for p, q in zip(bare.params, twin, strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-5, atol=1e-6)


def test_bare_examples_per_s_times_the_steps_it_is_asked_for(monkeypatch):
    roofline = _load("roofline")
    calls = []
    real = roofline.BareStep.__call__
    monkeypatch.setattr(roofline.BareStep, "__call__",
                        lambda self: (calls.append(1), real(self))[1])
    eps = roofline.bare_examples_per_s(8, 20, 12, 3, steps=7, warm_up=2)
    assert len(calls) == 9 and eps > 0
