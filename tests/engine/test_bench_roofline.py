"""bench/roofline.py: the matmul list, FLOP count and floor behind engine_vs_pythae's roofline
figures describe the step the engine really runs."""

from __future__ import annotations

import collections
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
