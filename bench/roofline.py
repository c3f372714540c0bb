"""The matmul roofline of the benchmark MLP's training step (used by engine_vs_pythae.py).

Issue 14 states the CPU target twice: ">= 2.5x pythae" and ">= 35% of the matmul roofline".
The first depends on how fast pythae runs on the machine at hand, the second does not; this
module measures what both need, on the machine and in the process that runs the benchmark.

One Adam step of the MLP D-H-(Z, Z)-H-D (encoder hidden layer, the mu and log-variance
heads, decoder hidden and output layers; both sides of the benchmark have this shape) does
14 matrix products on a batch of b: the 5 forward ones, 5 for the weight gradients and 4 for
the input gradients (none for the first layer: the data needs no gradient). ``step_matmuls``
lists them with the operand layouts autograd uses (checked against ``FlopCounterMode`` and
the dispatched shapes in tests/engine/test_bench_roofline.py).

- ``peak_gflops``: the best throughput of the issue's yardstick product, (b x D) by (D x H),
  in the dtype the engine's matmuls run in (float32, or bfloat16 under ``--bf16``).
- ``matmul_floor_ms``: the 14 products of one step timed one by one, operands hot in cache,
  best of several rounds; ``adam_ms``: the engine's Adam update of the MLP's parameters
  (``vae_engine.adam_step.FusedAdamStep``: torch's fused kernel, float32 state, as in every
  engine run; pythae's unfused Adam is slower), timed the same way. ``floor_ms_per_step``,
  their sum, is what any step that trains this MLP with Adam costs at least here. Its ratio
  to pythae's measured step time, ``throughput_ratio_ceiling``, is the largest
  ``throughput_ratio`` possible if the loss, autograd and Python cost nothing and the caches
  were as warm as in these timings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

ROOFLINE_FRACTION_MIN = 0.35  # issue 14, "(>= 35% of the matmul roofline)"

# (name, kind, m, k, n): kind "addmm" = bias + a @ w.t() (forward), "wgrad" = g.t() @ a
# (m x k by k x n with k = b), "igrad" = g @ w.


def layers(d: int, h: int, z: int) -> list[tuple[str, int, int]]:
    """(name, in, out) of the MLP's linear layers, in forward order."""
    return [("enc", d, h), ("mu", h, z), ("logvar", h, z), ("dec", z, h), ("out", h, d)]


def step_matmuls(b: int, d: int, h: int, z: int) -> list[tuple[str, str, int, int, int]]:
    fwd = layers(d, h, z)
    out = [(f"{name} forward", "addmm", b, i, o) for name, i, o in fwd]
    out += [(f"{name} weight grad", "wgrad", o, b, i) for name, i, o in fwd]
    out += [(f"{name} input grad", "igrad", b, o, i) for name, i, o in fwd[1:]]
    return out


def step_flops(b: int, d: int, h: int, z: int) -> int:
    """Multiply-add FLOPs (2 per multiply-accumulate) of the step's matrix products."""
    return sum(2 * m * k * n for _, _, m, k, n in step_matmuls(b, d, h, z))


def _operands(kind: str, m: int, k: int, n: int, dtype: torch.dtype, device: str
              ) -> Callable[[], torch.Tensor]:
    g = torch.Generator(device="cpu").manual_seed(m * 7 + k * 5 + n)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)

    if kind == "addmm":  # (m x k) @ (n x k).t() + bias(n): nn.Linear's forward
        bias, a, w = r(n), r(m, k), r(n, k)
        return lambda: torch.addmm(bias, a, w.t())
    if kind == "wgrad":  # (k x m).t() @ (k x n): grad_output.t() @ input
        go, a = r(k, m), r(k, n)
        return lambda: torch.mm(go.t(), a)
    go, w = r(m, k), r(k, n)  # igrad: grad_output (m x k) @ weight (k x n)
    return lambda: torch.mm(go, w)


def _best_ms(fn: Callable[[], Any], device: str, reps: int, rounds: int) -> float:
    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(max(3, reps // 10)):
        fn()
    sync()
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        sync()
        best = min(best, (time.perf_counter() - t) / reps)
    return best * 1e3


def adam_update(d: int, h: int, z: int, device: str) -> Callable[[], None]:
    """One call of the engine's Adam step on parameters shaped like the MLP's."""
    from vae_engine.adam_step import FusedAdamStep

    g = torch.Generator(device="cpu").manual_seed(0)
    shapes = [s for _, i, o in layers(d, h, z) for s in ((o, i), (o,))]  # weight, bias
    params = [torch.nn.Parameter(torch.randn(*s, generator=g).to(device)) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g).to(device) * 1e-3
    opt = torch.optim.Adam(params, lr=1e-3, fused=True)
    opt.step()  # creates the state; FusedAdamStep's own path from the next call on
    return FusedAdamStep(opt)


def measure(b: int, d: int, h: int, z: int, dtype: torch.dtype = torch.float32,
            device: str = "cpu", reps: int = 50, rounds: int = 5) -> dict[str, Any]:
    """The peak and the floor of one step on this machine, matmuls in ``dtype``."""
    products = step_matmuls(b, d, h, z)
    times = {name: _best_ms(_operands(kind, m, k, n, dtype, device), device, reps, rounds)
             for name, kind, m, k, n in products}
    yard = times["enc forward"]  # the yardstick product: (b x d) by (d x h)
    adam = _best_ms(adam_update(d, h, z, device), device, reps, rounds)
    return {
        "dtype": str(dtype).removeprefix("torch."),
        "flops_per_example": step_flops(b, d, h, z) / b,
        "peak_gflops": 2 * b * d * h / yard / 1e6,
        "matmul_floor_ms": sum(times.values()),
        "adam_ms": adam,
        "floor_ms_per_step": sum(times.values()) + adam,
        "matmul_ms": times,
    }


def summarise(fig: dict[str, Any], batch: int, engine_eps: float, pythae_eps: float,
              fp32_peak_gflops: float) -> dict[str, Any]:
    """Achieved fractions of the peak, and the throughput_ratio the matmul floor allows."""
    per_example = fig["flops_per_example"]
    floor_per_example_s = fig["floor_ms_per_step"] / 1e3 / batch
    return {
        **fig,
        "engine_gflops": engine_eps * per_example / 1e9,
        "engine_fraction": engine_eps * per_example / 1e9 / fig["peak_gflops"],
        # pythae computes in float32 whatever the engine does
        "pythae_fraction": pythae_eps * per_example / 1e9 / fp32_peak_gflops,
        "throughput_ratio_ceiling": (1.0 / pythae_eps) / floor_per_example_s,
    }
