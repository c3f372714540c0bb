"""The whole training step as one CUDA graph (``train.cuda_graph``; on by default on a GPU).

A step of a small model is a few dozen kernels of a few microseconds each, so on a GPU its
cost is the host launching them, not the device running them. With ``train.cuda_graph``
the step - forward, rate term, KL scheme, backward, gradient norm, non-finite guard, fused
Adam, the controllers' update and the logged values - is captured once with
``torch.cuda.graph`` and then replayed: one launch per step.

What changes from step to step is kept out of the captured kernels:

- the batch is copied into the graph's input buffer before each replay;
- a scheme's Python floats that depend on the step (``KLScheme.step_values``: the weight of
  a schedule, the capacity C_t, the PI controller's set point) are read on the host as
  usual and written into one float64 device scalar each (only when they change); while
  capturing, the scheme's method returns that scalar instead of a float;
- the controllers' state and the guard's flags (``DeviceLog``), which the eager step
  replaces by new tensors, are copied back into fixed tensors at the end of the captured
  step, so the next replay reads the values this one wrote;
- the logged values are stacked into one vector in the graph and copied out after each
  replay (the graph's memory is overwritten by the next replay);
- what would change the kernels themselves - the batch shape (an epoch's last, partial
  batch), a logged or unlogged step, NVAE balancing on or off (``in_warmup``) - selects one
  of a few graphs, each captured the second time its kind of step comes up (the first one
  runs eagerly, so nothing is initialised during a capture). Each graph keeps the
  activations of its step in its own memory pool: up to four times the eager step's
  activation memory (logged and unlogged, full and partial batch).

The first ``WARMUP`` steps run eagerly, on the side stream that later captures (as the
PyTorch CUDA-graphs notes ask). A scheme can be captured if its ``objective`` and
``update`` are the base class's (it only defines ``weight``) or it sets ``graph_safe``
after checking that nothing else in them depends on the step on the host.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from vae_engine.errors import SpecError
from vae_engine.kl import KLScheme

log = logging.getLogger(__name__)

WARMUP = 3  # eager steps before the first capture
GUARD_STATE = ("bad", "n_good", "loss_first")  # DeviceLog's tensors, replaced each step

Step = Callable[..., dict[str, Any]]  # trainer.train_step's signature


def graph_problems(run: Any) -> list[dict[str, str]]:
    """Why this run's step cannot be captured (empty: it can)."""
    field = "train.cuda_graph"
    out = []
    if run.device.type != "cuda":
        out.append({"field": field, "message": "needs a CUDA device (train.device: cuda, or "
                                               "auto on a machine with a GPU)"})
    scheme = type(run.scheme)
    plain = scheme.objective is KLScheme.objective and scheme.update is KLScheme.update
    if not (plain or scheme.graph_safe):
        out.append({"field": field, "message": f"the KL scheme {scheme.__name__} is not marked "
                                               "graph_safe (see vae_engine/graphed.py)"})
    elif scheme.update is not KLScheme.update and not scheme.device_stats:
        out.append({"field": field, "message": f"the KL scheme {scheme.__name__} reads its "
                                               "statistics on the host (device_stats)"})
    return out


def make_stepper(run: Any, guard: Any, train_step: Step) -> Step:
    """``train_step`` itself, or its graphed form: ``train.cuda_graph`` true (an error if the
    run cannot have it), or unset on a GPU (skipped, with a log line, where it cannot)."""
    wanted = run.spec.train.cuda_graph
    if wanted is False or (wanted is None and run.device.type != "cuda"):
        return train_step
    problems = graph_problems(run)
    if problems and wanted:
        raise SpecError(problems)
    if problems:
        log.info("the step runs eagerly: %s", "; ".join(p["message"] for p in problems))
        return train_step
    return GraphedStep(run, guard, train_step)


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    x: torch.Tensor  # input buffer
    names: list[str]  # the logged tensors, in the order of ``values``
    values: torch.Tensor | None  # float64 vector written by each replay
    floats: dict[str, Any]  # logged Python values (constants of the run)


class GraphedStep:
    def __init__(self, run: Any, guard: Any, step_fn: Step):
        self.run, self.guard, self.step_fn = run, guard, step_fn
        self.stream = torch.cuda.Stream(device=run.device)
        self.graphs: dict[tuple[Any, ...], _Graph] = {}
        self.seen: set[tuple[Any, ...]] = set()
        self.eager = 0  # eager steps run so far
        scheme = run.scheme
        # step-dependent floats become device scalars; a method that returns a tensor
        # (a controller's state) is already one
        self.lifted = {name: torch.zeros((), dtype=torch.float64, device=run.device)
                       for name in scheme.step_values
                       if not torch.is_tensor(getattr(scheme, name)(0))}
        self.filled: dict[str, float] = {}
        self.state = [(guard, name) for name in GUARD_STATE] + \
                     [(scheme, name) for name in scheme.tensor_fields]
        self.fixed: list[torch.Tensor] | None = None  # the state's tensors the graphs use

    def key(self, x: torch.Tensor, step: int, logged: bool) -> tuple[Any, ...]:
        balancing = getattr(self.run.spec.kl, "balancing", None) is not None
        return tuple(x.shape), logged, balancing and self.run.scheme.in_warmup(step)

    def __call__(self, run: Any, x: torch.Tensor, step: int, guard: Any,
                 with_grad_norm: bool = True) -> dict[str, Any]:
        key = self.key(x, step, with_grad_norm)
        if self.eager < WARMUP or (key not in self.graphs and key not in self.seen):
            self.seen.add(key)
            self.eager += 1
            return self._eager(x, step, with_grad_norm)
        g = self.graphs.get(key) or self._capture(key, x, step, with_grad_norm)
        self._bind()
        for name, buf in self.lifted.items():
            value = float(getattr(run.scheme, name)(step))
            if self.filled.get(name) != value:
                buf.fill_(value)
                self.filled[name] = value
        g.x.copy_(x)
        g.graph.replay()
        if not with_grad_norm:
            return {}
        out: dict[str, Any] = dict(g.floats)
        if g.values is not None:
            out.update(zip(g.names, g.values.clone().unbind(), strict=True))
        return out

    def _eager(self, x: torch.Tensor, step: int, logged: bool) -> dict[str, Any]:
        """A step run as is, on the capture stream. Its logged tensors are copied: once the
        graphs exist, a controller's state tensor it logs is overwritten in place later."""
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            metrics = self.step_fn(self.run, x, step, self.guard, with_grad_norm=logged)
            if self.fixed is not None:
                metrics = {k: v.clone() if torch.is_tensor(v) else v for k, v in metrics.items()}
        torch.cuda.current_stream().wait_stream(self.stream)
        return metrics

    def _bind(self) -> None:
        """Point the state at the fixed tensors, copying in what a step replaced (an eager
        step, or inside a capture the captured one)."""
        if self.fixed is None:
            self.fixed = [getattr(obj, name).clone() for obj, name in self.state]
        for (obj, name), fixed in zip(self.state, self.fixed, strict=True):
            current = getattr(obj, name)
            if current is not fixed:
                fixed.copy_(current)
                setattr(obj, name, fixed)

    def _capture(self, key: tuple[Any, ...], x: torch.Tensor, step: int,
                 logged: bool) -> _Graph:
        self._bind()
        scheme = self.run.scheme
        for name, buf in self.lifted.items():  # instance attributes shadow the methods
            setattr(scheme, name, lambda _step, _buf=buf: _buf)
        # optimizer.step() refuses a capture unless told it may be captured; the fused Adam's
        # own path (vae_engine/adam_step.py) never calls it once its lists are built
        groups = self.run.optimizer.param_groups
        capturable = [g.get("capturable", False) for g in groups]
        for g in groups:
            g["capturable"] = True
        static_x = x.clone()
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize(self.run.device)
        try:
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                metrics = self.step_fn(self.run, static_x, step, self.guard,
                                       with_grad_norm=logged)
                names = [k for k, v in metrics.items() if torch.is_tensor(v)]
                values = torch.stack([metrics[k].detach().reshape(()).to(torch.float64)
                                      for k in names]) if names else None
                self._bind()  # after the stack: logged state keeps this step's value
        except RuntimeError as err:  # e.g. a plugin's host copy inside the step
            raise SpecError([{"field": "train.cuda_graph", "message": "the step could not be "
                              f"captured as a CUDA graph ({str(err).splitlines()[0]}); train "
                              "without it"}]) from err
        finally:
            for name in self.lifted:
                delattr(scheme, name)
            for g, flag in zip(groups, capturable, strict=True):
                g["capturable"] = flag
        floats = {k: v for k, v in metrics.items() if not torch.is_tensor(v)}
        self.graphs[key] = _Graph(graph, static_x, names, values, floats)
        log.info("step %d: captured a CUDA graph (batch %s, %s)", step + 1, key[0],
                 "logged" if logged else "not logged")
        return self.graphs[key]
