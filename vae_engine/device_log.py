"""Training metrics kept on the device between reads, and the non-finite guard without a sync.

A training step that converts a tensor to a Python number (``float(loss)``, ``.item()``,
``if torch.isfinite(loss)``) makes the host wait for the device to finish that step: on a
GPU the step then costs its kernels *plus* a round trip, and the host cannot queue the next
step's kernels while the device works (on a CPU, whose ops run synchronously anyway, a read
costs only its call). So the loop never reads inside a step (issue 14):

- the metrics of each logged step stay device tensors in :class:`DeviceLog` until
  :meth:`DeviceLog.read`, which turns all of them into floats with a single transfer; the
  trainer reads at the first logged step at least ``read_every`` (``READ_EVERY``) steps
  after the previous read, and before anything that needs the values (an evaluation, a
  checkpoint, a stop, the end), so the logged stream - its steps and values - is the one a
  read per step would give;
- the non-finite check is a sticky device flag: the first step whose loss or gradient is
  not finite sets it, and from then on the fused Adam update is skipped (its ``found_inf``
  input, as the AMP grad scaler uses it), so the weights stay exactly those before that
  step - the last good state. :attr:`DeviceLog.n_good` counts the good steps; at the next
  read the trainer names the exact step (start + n_good + 1) and raises. The lag is at most
  ``read_every + log_every - 1`` steps, and nothing after the bad step changes the model.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from vae_engine.errors import NonFiniteLossError
from vae_engine.io import MetricSink

READ_EVERY = 32  # a read at the first logged step at least this many steps after the last


class DeviceLog:
    def __init__(self, device: torch.device, optimizer: torch.optim.Optimizer, start: int):
        self.start = start  # the step the run (re)started from
        self.bad = torch.zeros((), dtype=torch.bool, device=device)
        self.n_good = torch.zeros((), dtype=torch.int64, device=device)
        # Read by fused Adam at every step: a non-zero value skips the update.
        self.found_inf = torch.zeros((), dtype=torch.float32, device=device)
        self.loss_first = torch.zeros((), dtype=torch.bool, device=device)  # loss or grads?
        self._one = torch.ones((), dtype=torch.float32, device=device)
        if not optimizer.defaults.get("fused"):
            raise ValueError("DeviceLog needs the fused Adam (its found_inf input)")
        optimizer.found_inf = self.found_inf  # type: ignore[attr-defined]
        self.pending: list[tuple[int, dict[str, Any]]] = []
        self.what = "loss"  # what was non-finite at the first bad step (set by read)

    def check(self, loss: torch.Tensor, grads: list[torch.Tensor],
              grad_norm: torch.Tensor | None = None) -> None:
        """Record whether this step's loss and gradients are finite (after the backward,
        before the optimizer step). A finite loss can still give an infinite gradient
        (and NaN weights one update later): both count. Given the step's gradient norm, a
        finite norm vouches for every gradient (no second pass over them); an overflowing
        norm of finite gradients counts as non-finite too."""
        loss_bad = ~torch.isfinite(loss.detach())
        if grad_norm is not None:
            grads_bad = ~torch.isfinite(grad_norm.detach())
        else:
            found = torch.zeros((), dtype=torch.float32, device=self.found_inf.device)
            if grads:  # one fused pass over the gradients (the AMP grad scaler's check)
                torch._amp_foreach_non_finite_check_and_unscale_(grads, found, self._one)
            grads_bad = found.bool()
        first = ~self.bad & (loss_bad | grads_bad)
        self.loss_first = torch.where(first, loss_bad, self.loss_first)
        self.bad = self.bad | first
        self.n_good = self.n_good + (~self.bad).to(torch.int64)
        self.found_inf.copy_(self.bad)

    def add(self, step: int, metrics: dict[str, Any]) -> None:
        """Keep the metrics of completed step ``step`` (floats or device tensors)."""
        self.pending.append((step, metrics))

    def read(self) -> tuple[list[tuple[int, dict[str, float]]], int | None]:
        """All pending metrics as floats, and the 1-based step of the first non-finite loss
        or gradient (None if every step so far was finite; ``what`` then says which). One
        transfer from the device."""
        tensors: list[torch.Tensor] = [self.bad.to(torch.float64),
                                       self.n_good.to(torch.float64),
                                       self.loss_first.to(torch.float64)]
        for _, metrics in self.pending:
            tensors += [v.detach().reshape(()).to(torch.float64)
                        for v in metrics.values() if torch.is_tensor(v)]
        values = iter(torch.stack(tensors).tolist())
        bad, n_good, loss_first = next(values), int(next(values)), next(values)
        self.what = "loss" if loss_first else "gradient"
        first_bad = self.start + n_good + 1 if bad else None
        out = []
        for step, metrics in self.pending:
            row = {k: next(values) if torch.is_tensor(v) else float(v)
                   for k, v in metrics.items()}
            if first_bad is None or step < first_bad:
                out.append((step, row))
        self.pending = []
        return out, first_bad


class LogReader:
    """Reads a DeviceLog into the sink; examples/s over the steps since the last read."""

    def __init__(self, sink: MetricSink, guard: DeviceLog, last_ckpt: str | None):
        self.sink, self.guard, self.last_ckpt = sink, guard, last_ckpt
        self.last_read = guard.start
        self.tick, self.seen = time.perf_counter(), 0

    def read(self, step: int) -> dict[str, float]:
        """Log every pending step; raise NonFiniteLossError naming the first bad step and
        the last good checkpoint. Returns the last logged metrics ({} if none)."""
        rows, first_bad = self.guard.read()
        now = time.perf_counter()
        rate = self.seen / max(now - self.tick, 1e-9)
        for row_step, row in rows:
            row["examples_per_s"] = rate
            self.sink.log(row_step, row)
        self.tick, self.seen, self.last_read = now, 0, step
        if first_bad is not None:
            self.sink.flush()
            raise NonFiniteLossError(first_bad, self.last_ckpt, self.guard.what)
        return rows[-1][1] if rows else {}
