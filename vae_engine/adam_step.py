"""``optimizer.step()`` of the fused Adam without its per-step Python bookkeeping.

``torch.optim.Adam(fused=True).step()`` spends, on every call, more time in Python than in
its kernel's loop over a small model's parameters: the profiler hooks, ``_init_group``
walking every parameter's state, grouping the tensors by device and dtype, building the
``found_inf`` dictionaries - for the same lists each time. Measured on the pythae benchmark's
MLP (830 k parameters, one thread): ~0.35 ms of Python around a ~0.7 ms kernel per step.

:class:`FusedAdamStep` builds those lists once, after the optimizer's first real step
created its state, and then calls the same kernels that ``torch.optim.adam._fused_adam``
calls, in the same order (``_foreach_add_`` of the step counts, ``_fused_adam_`` with the
optimizer's ``found_inf``, ``_foreach_sub_`` of the skipped steps): the updated weights and
the optimizer state are bitwise those of ``optimizer.step()`` (a test checks it). The state
stays in the optimizer, so ``state_dict()``, checkpoints and resume are unchanged. The lists
are rebuilt whenever the optimizer's state was replaced (``load_state_dict``); anything this
fast path does not cover (several parameter groups, amsgrad, a parameter without a
gradient, mixed devices or dtypes, a state not yet created) goes through
``optimizer.step()``.
"""

from __future__ import annotations

from typing import Any

import torch


class FusedAdamStep:
    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self._state: Any = None  # the optimizer.state the lists were built from
        self._lists: tuple[list[torch.Tensor], ...] | None = None

    def _build(self) -> tuple[list[torch.Tensor], ...] | None:
        opt = self.optimizer
        if len(opt.param_groups) != 1 or not isinstance(opt, torch.optim.Adam):
            return None
        group = opt.param_groups[0]
        if not group.get("fused") or group.get("amsgrad") or group.get("maximize") \
                or group.get("decoupled_weight_decay") or group.get("capturable"):
            return None
        params = list(group["params"])
        states = [opt.state.get(p) for p in params]
        if not params or any(not s or "exp_avg" not in s for s in states):
            return None  # the first step (or a restored partial state): the slow path
        if len({(p.device, p.dtype) for p in params}) != 1 or any(p.is_complex() for p in params):
            return None
        return (params, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                [s["step"] for s in states])

    def __call__(self) -> None:
        opt = self.optimizer
        if self._state is not opt.state:  # new optimizer state (first use, load_state_dict)
            self._lists = self._build()
            self._state = opt.state if self._lists is not None else None
        if self._lists is None:
            opt.step()
            return
        params, exp_avgs, exp_avg_sqs, steps = self._lists
        grads = [p.grad for p in params]
        if any(g is None for g in grads):  # Adam skips such a parameter; keep its rules
            opt.step()
            return
        group = opt.param_groups[0]
        found_inf = getattr(opt, "found_inf", None)
        beta1, beta2 = group["betas"]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False,
            lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
            eps=group["eps"], maximize=False, grad_scale=getattr(opt, "grad_scale", None),
            found_inf=found_inf,
        )
        if found_inf is not None:
            torch._foreach_sub_(steps, [found_inf] * len(steps))
