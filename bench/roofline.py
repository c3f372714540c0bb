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
- :func:`bare_examples_per_s`: a whole training run of the benchmark's VAE written out by
  hand (:class:`BareStep`): each step a batch gathered from a training set of the
  benchmark's size, the 14 products, the reparameterisation, the Bernoulli and KL terms and
  their gradients, the gradient norm (the engine logs it at every step) and the same Adam
  update, with no autograd, no modules, and every array the step computes written into a
  buffer made once (only the loss's reductions allocate: the BCE's elementwise term and a
  few scalars). It is the step's work in the caches a real loop leaves: engine_vs_pythae
  runs it after each repeat's two trainings, for as many steps, and its ratio to pythae's
  speed, ``throughput_ratio_bare_ceiling``, is the ratio a framework with no overhead at all
  would reach on this machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from vae_engine.adam_step import FusedAdamStep

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


def adam_update(d: int, h: int, z: int, device: str) -> FusedAdamStep:
    """One call of the engine's Adam step on parameters shaped like the MLP's: nn.Linear's
    weight (out x in, scaled by 1 / sqrt(in)) and bias for each layer, in forward order
    (``.optimizer.param_groups[0]["params"]``), each with a small random gradient."""
    g = torch.Generator(device="cpu").manual_seed(0)
    shapes = [s for _, i, o in layers(d, h, z) for s in ((o, i), (o,))]  # weight, bias
    params = [torch.nn.Parameter((torch.randn(*s, generator=g) / s[-1] ** 0.5).to(device))
              for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g).to(device) * 1e-3
    opt = torch.optim.Adam(params, lr=1e-3, fused=True)
    opt.step()  # creates the state; FusedAdamStep's own path from the next call on
    return FusedAdamStep(opt)


class BareStep:
    """One Adam step of the benchmark's VAE (Bernoulli decoder, beta = 1, batch-mean loss),
    its backward derived by hand. Parameters as nn.Linear keeps them: weight (out x in)."""

    def __init__(self, b: int, d: int, h: int, z: int, n_train: int = 4000, seed: int = 0):
        self.b, self.z, self.n_train = b, z, n_train
        self.x_train = torch.rand(n_train, d, generator=torch.Generator().manual_seed(seed))
        self.adam = adam_update(d, h, z, "cpu")  # the gradients are overwritten at each step
        self.params: list[torch.nn.Parameter] = self.adam.optimizer.param_groups[0]["params"]
        e = torch.empty
        self.a1, self.h, self.a2, self.hd = e(b, h), e(b, h), e(b, h), e(b, h)
        self.mu, self.lv, self.std, self.eps, self.zs = (e(b, z) for _ in range(5))
        self.logits, self.dl = e(b, d), e(b, d)
        self.dh, self.dhd, self.dz = e(b, h), e(b, h), e(b, z)
        self.dmu, self.dlv, self.tmp = e(b, z), e(b, z), e(b, z)
        self.mask, self.x, self.idx = e(b, h), e(b, d), torch.empty(b, dtype=torch.long)
        self.step_no = 0

    @torch.no_grad()
    def forward_backward(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Fill every parameter's .grad with the gradient of the batch-mean negative ELBO
        at ``x`` with noise ``eps``; return that loss."""
        w1, b1, wm, bm, wl, bl, wd, bd, wo, bo = self.params
        gw1, gb1, gwm, gbm, gwl, gbl, gwd, gbd, gwo, gbo = (p.grad for p in self.params)
        n = x.shape[0]
        torch.addmm(b1, x, w1.t(), out=self.a1)
        torch.clamp_min(self.a1, 0, out=self.h)
        torch.addmm(bm, self.h, wm.t(), out=self.mu)
        torch.addmm(bl, self.h, wl.t(), out=self.lv)
        torch.mul(self.lv, 0.5, out=self.std).exp_()
        torch.addcmul(self.mu, self.std, eps, out=self.zs)
        torch.addmm(bd, self.zs, wd.t(), out=self.a2)
        torch.clamp_min(self.a2, 0, out=self.hd)
        torch.addmm(bo, self.hd, wo.t(), out=self.logits)
        # loss: BCE with logits summed over pixels + the Gaussian KL, both batch means
        distortion = torch.nn.functional.binary_cross_entropy_with_logits(
            self.logits, x, reduction="sum")
        var = self.std * self.std  # exp(lv)
        kl = 0.5 * (self.mu.square().sum() + var.sum() - self.lv.sum()) - 0.5 * n * self.z
        # backward
        torch.sigmoid(self.logits, out=self.dl).sub_(x).div_(n)
        torch.mm(self.dl.t(), self.hd, out=gwo)
        torch.sum(self.dl, 0, out=gbo)
        torch.mm(self.dl, wo, out=self.dhd)
        torch.gt(self.a2, 0, out=self.mask)
        self.dhd.mul_(self.mask)
        torch.mm(self.dhd.t(), self.zs, out=gwd)
        torch.sum(self.dhd, 0, out=gbd)
        torch.mm(self.dhd, wd, out=self.dz)
        torch.add(self.dz, self.mu, alpha=1.0 / n, out=self.dmu)  # d/dmu: dz + mu / n
        # d/dlv: dz * eps * std / 2 + (exp(lv) - 1) / (2n)
        torch.mul(self.dz, eps, out=self.dlv).mul_(self.std).mul_(0.5)
        torch.sub(var, 1.0, out=self.tmp)
        self.dlv.add_(self.tmp, alpha=0.5 / n)
        torch.mm(self.dmu.t(), self.h, out=gwm)
        torch.sum(self.dmu, 0, out=gbm)
        torch.mm(self.dlv.t(), self.h, out=gwl)
        torch.sum(self.dlv, 0, out=gbl)
        torch.mm(self.dmu, wm, out=self.dh)
        self.dh.addmm_(self.dlv, wl)
        torch.gt(self.a1, 0, out=self.mask)
        self.dh.mul_(self.mask)
        torch.mm(self.dh.t(), x, out=gw1)
        torch.sum(self.dh, 0, out=gb1)
        return (distortion + kl) / n

    @torch.no_grad()
    def __call__(self) -> None:
        # the next b rows of the training set (the engine gathers a shuffled batch: the same
        # 200 KB copy, from rows spread over the set)
        start = (self.step_no * self.b) % (self.n_train - self.b + 1)
        self.step_no += 1
        torch.arange(start, start + self.b, out=self.idx)
        torch.index_select(self.x_train, 0, self.idx, out=self.x)
        self.eps.normal_()
        self.forward_backward(self.x, self.eps)
        torch._foreach_norm([p.grad for p in self.params])
        self.adam()


def bare_examples_per_s(b: int, d: int, h: int, z: int, steps: int, warm_up: int = 5) -> float:
    """Examples/s of ``steps`` bare steps (float32, on the CPU), after ``warm_up`` more."""
    step = BareStep(b, d, h, z)
    for _ in range(warm_up):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * b / (time.perf_counter() - t)


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
