"""How many CPU threads a training process uses, chosen so that it never oversubscribes.

PyTorch's default is one intra-op thread per core of the machine, and its OpenMP threads
spin while they wait at a barrier. Next to other busy processes (other jobs, other workers,
a CPU limit in a container) that is the worst case: a parallel region finishes only when its
slowest thread is scheduled again, and the spinning threads burn the time slices the others
need. Measured on a 2-core machine: a 40-epoch spec took 44-80 s with the default and
13-14 s with one thread (issue 14).

:func:`pick_threads` therefore takes the smallest of

- the CPUs this process may run on (``os.sched_getaffinity``),
- the CPU quota of its cgroup (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``),
  rounded up,
- the CPUs that were idle over a short sample of ``/proc/stat`` (only those in the affinity
  set), rounded to the nearest whole CPU: CPUs another process keeps busy are not ours,

and never less than one; then, when the caller says how much matmul work one training step
does (``work``: FLOPs of the forward and backward, :func:`step_flops`), no more than one
thread per ``FLOPS_PER_THREAD`` of it (the work-size rule below). :func:`configure_threads`
applies a count: intra-op threads, one inter-op thread, and a passive OpenMP wait policy
(``OMP_WAIT_POLICY=PASSIVE``, read by the OpenMP runtime when torch loads it, so
:func:`passive_wait` must run before ``import torch`` to take effect; the ``vaelab``
commands and the worker's pool children do that).

The count is decided at the start of each run (``train``): a load that starts during a run
is not followed.

**The work-size rule.** A second thread is not free even on idle CPUs: every op big enough
to be split (ATen's grain size, every MKL GEMM) forks and joins, and with the passive wait
the sleeping thread must be woken by the kernel each time. A training step of a small model
runs a few dozen such regions, so the second thread costs a roughly fixed time per step while
it saves at most half the matmul time. Measured on the 2-core machine of issue 14 (a step
of an MLP VAE with fused Adam; 1 and 2 threads alternated in one process, the best of 4, two
sweeps; the machine was shared, load average 2-2.9; FLOPs per training step as counted by
:func:`step_flops`), time with two threads over time with one:

- digits 8x8, hidden [512], batch 64 (35 MFLOP): 1.56-1.72 (2.1-2.7 ms with one thread);
  ``bench/contention.py`` on that spec, 20 epochs, alone: 7.72 s against 5.93 s;
- mnist 28x28, [512], 64 (320 MFLOP; the pythae benchmark's MLP): 1.14-2.10 (6.1-6.3 ms);
- mnist, [1024], 64 (640 MFLOP): 0.77-1.06 (11.6-18.3 ms);
- [512] x 256 and [2048] x 64 (1.3 GFLOP): 0.88-1.22 (17-29 ms);
- [1024, 1024] x 128 and [2048] x 256 (2.9-5.1 GFLOP): 0.70-1.11 (47-74 ms).

A second thread costs ~1-2 ms per step (fork/join, wake-ups) and saves half the matmul time
(~60 GFLOP/s per core here): it breaks even near 0.6-0.8 GFLOP per step and pays from ~1.3
GFLOP. ``FLOPS_PER_THREAD`` = 0.4 GFLOP is that figure per thread: a step of W FLOPs gets
at most ``floor(W / FLOPS_PER_THREAD)`` threads (at least one). The count changes no
result: the matmuls and reductions of these models give bitwise the same values at one and
two threads (checked on digits and mnist5k: the same final test ELBO to the last bit), and
the guarantees above still hold (never more than the usable or idle CPUs; an explicit
count - ``--threads``, ``OMP_NUM_THREADS``, the worker's default - skips the rule).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CGROUP_ROOT = Path("/sys/fs/cgroup")
IDLE_SAMPLE_S = 0.2  # how long /proc/stat is sampled to count idle CPUs
FLOPS_PER_THREAD = 4e8  # matmul FLOPs per training step one thread must bring (docstring)


def affinity_cpus() -> set[int]:
    """The CPUs this process may run on."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return set(range(os.cpu_count() or 1))


def _own_cgroup_paths(proc_cgroup: Path) -> dict[str, str]:
    """controller -> path from /proc/self/cgroup ("" is the v2 unified hierarchy)."""
    out: dict[str, str] = {}
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            out[controller] = parts[2]
    return out


def _candidates(base: Path, rel: str) -> list[Path]:
    """base/rel and each of its parents up to base (a limit anywhere above applies too)."""
    rel = rel.strip("/")
    found = [base]
    if rel:
        parts = rel.split("/")
        found += [base.joinpath(*parts[:i]) for i in range(1, len(parts) + 1)]
    return found


def cgroup_cpu_limit(root: Path = CGROUP_ROOT,
                     proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (e.g. 1.5), or None if unlimited.

    cgroup v2: ``cpu.max`` holds ``"<quota> <period>"`` or ``"max <period>"``; cgroup v1:
    ``cpu.cfs_quota_us`` (-1 = none) over ``cpu.cfs_period_us``. Every level from the root to
    the process's own group is read and the smallest quota counts.
    """
    paths = _own_cgroup_paths(proc_cgroup)
    limits: list[float] = []
    for d in _candidates(root, paths.get("", "")):  # v2
        try:
            quota, period = (d / "cpu.max").read_text().split()[:2]
        except (OSError, ValueError):
            continue
        if quota != "max" and float(period) > 0:
            limits.append(float(quota) / float(period))
    for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):  # v1 mount points
        base = root / name
        if not base.is_dir():
            continue
        rel = paths.get("cpu", "")
        for d in _candidates(base, rel):
            try:
                quota = float((d / "cpu.cfs_quota_us").read_text())
                period = float((d / "cpu.cfs_period_us").read_text())
            except (OSError, ValueError):
                continue
            if quota > 0 and period > 0:
                limits.append(quota / period)
        break
    return min(limits) if limits else None


def _cpu_times(stat: Path) -> dict[int, tuple[int, int]]:
    """cpu index -> (idle jiffies incl. iowait, total jiffies) from /proc/stat."""
    out: dict[int, tuple[int, int]] = {}
    for line in stat.read_text().splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *fields = line.split()
        values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        out[int(name[3:])] = (values[3] + values[4], sum(values))
    return out


def idle_cpus(cpus: set[int], sample_s: float = IDLE_SAMPLE_S,
              stat: Path = Path("/proc/stat"),
              wait: Callable[[float], None] = time.sleep) -> float | None:
    """How many of ``cpus`` were idle over ``sample_s`` seconds (None where unknown).

    ``wait`` is what passes the sample time (a test passes one that advances a fake stat).
    """
    try:
        before = _cpu_times(stat)
        wait(sample_s)
        after = _cpu_times(stat)
    except (OSError, ValueError):
        return None
    idle = 0.0
    for cpu in cpus:
        if cpu not in before or cpu not in after:
            return None
        d_idle = after[cpu][0] - before[cpu][0]
        d_total = after[cpu][1] - before[cpu][1]
        idle += d_idle / d_total if d_total > 0 else 1.0
    return idle


def usable_cpus(root: Path = CGROUP_ROOT, affinity: set[int] | None = None,
                proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """CPUs the process may use: its affinity set, capped by its cgroup quota (rounded up)."""
    n = len(affinity if affinity is not None else affinity_cpus())
    limit = cgroup_cpu_limit(root, proc_cgroup)
    if limit is not None:
        n = min(n, math.ceil(limit - 1e-9))
    return max(1, n)


def work_cap(work: float | None) -> int | None:
    """The most threads a step of ``work`` FLOPs pays for (None: no limit known)."""
    return None if work is None else max(1, int(work // FLOPS_PER_THREAD))


def pick_threads(requested: int | None = None, *, root: Path = CGROUP_ROOT,
                 affinity: set[int] | None = None, idle: float | None = -1.0,
                 proc_cgroup: Path = Path("/proc/self/cgroup"),
                 work: float | None = None) -> int:
    """The thread count to use: ``requested`` if given (or ``OMP_NUM_THREADS`` if set), else
    the usable CPUs that are idle now, capped by the work-size rule when ``work`` (FLOPs per
    training step) is given (see the module docstring). ``idle=-1`` samples /proc/stat; None
    skips the sample."""
    if requested is None and os.environ.get("OMP_NUM_THREADS", "").isdigit():
        requested = int(os.environ["OMP_NUM_THREADS"]) or None  # the user's explicit choice
    if requested is not None:
        if requested < 1:
            raise ValueError("threads must be at least 1")
        return requested
    cpus = affinity if affinity is not None else affinity_cpus()
    n = usable_cpus(root, cpus, proc_cgroup)
    cap = work_cap(work)
    if cap is not None:
        n = min(n, cap)
    if n == 1:
        return 1  # nothing left to decide: no need to sample the idle CPUs
    if idle is not None and idle < 0:
        idle = idle_cpus(cpus)
    if idle is not None:
        n = min(n, max(1, math.floor(idle + 0.5)))
    return max(1, n)


def passive_wait() -> None:
    """Ask the OpenMP runtime not to spin at barriers (unless the environment already says
    otherwise). Effective only before torch is imported."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def step_flops(model: Any, x: Any) -> float | None:
    """Matmul/conv FLOPs of one training step of ``model`` on the batch ``x``: the forward's
    ``nn.Linear`` and ``nn.Conv*`` layers, counted from their shapes by forward hooks (2 per
    multiply-add; eval mode, no grad, its own generator: no batch-norm statistics or global
    random state touched), times 3 for the backward (a weight and an input gradient per
    layer). Hooks, not ``torch.utils.flop_counter``: its dispatch mode imports
    ``torch._dynamo`` on first use, ~1.8 s added to every run. None off the CPU: the
    accelerator does that work, and the CPU threads are left to the other rules."""
    import torch
    from torch import nn
    from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd

    if x.device.type != "cpu":
        return None
    total = 0

    def count(mod: Any, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(mod, nn.Linear):
            total += 2 * out.numel() * mod.in_features
        elif isinstance(mod, _ConvTransposeNd):  # each input value meets out/groups kernels
            total += 2 * inputs[0].numel() * mod.out_channels // mod.groups \
                * math.prod(mod.kernel_size)
        else:  # each output value: in/groups channels x kernel
            total += 2 * out.numel() * mod.in_channels // mod.groups * math.prod(mod.kernel_size)

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, nn.Linear | _ConvNd)]
    was = model.training
    model.eval()
    try:
        gen = torch.Generator(device=x.device).manual_seed(0)
        with torch.no_grad():
            model(x, gen)
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return 3.0 * total


def configure_threads(requested: int | None = None, work: float | None = None) -> int:
    """Pick and apply the thread count for this process; return it."""
    import torch

    n = pick_threads(requested, work=work)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)  # the engine never runs independent ops in parallel
    except RuntimeError:  # already set, or inter-op work already started
        pass
    return n


_applied: int | None = None  # the count this process runs with
_default: int | None = None  # set_default_threads: a process-wide override (the worker's)


def set_default_threads(n: int | None) -> None:
    """The count :func:`ensure_threads` applies when a run names none (``vaelab worker
    --threads``, set in each pool child); None: pick from the CPUs. Imports no torch."""
    global _default
    _default = n


def ensure_threads(requested: int | None = None,
                   work: Callable[[], float | None] | None = None) -> int:
    """Apply ``requested``, else the process default (set_default_threads), else a count
    picked now - at every run, so a long-lived worker child follows the load job by job
    (the pick samples /proc/stat for IDLE_SAMPLE_S). ``work`` gives the FLOPs of one
    training step (called only when the count is picked; see the work-size rule)."""
    global _applied
    requested = requested if requested is not None else _default
    omp = os.environ.get("OMP_NUM_THREADS", "")
    explicit = requested is not None or (omp.isdigit() and int(omp) > 0)
    if requested is None or requested != _applied:
        flops = work() if work is not None and not explicit else None
        _applied = configure_threads(requested, flops)
    return _applied
