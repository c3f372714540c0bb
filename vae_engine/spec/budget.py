"""What a spec will cost, estimated from the spec alone (no torch, nothing built or loaded),
and the check of that estimate against a deployment's limits.

The estimates are coarse on purpose (within a small factor of the real figures), enough to
refuse a spec that could never run (``model.hidden: [65536]*8``: ~6e10 parameters) before it
takes a worker:

- ``parameters``: encoder + decoder weights and biases (each architecture's
  ``size_estimate``);
- ``activation_bytes``: float32 values one training batch keeps for the backward pass
  (activations and their gradients: 3 x the forward values x batch size);
- ``iwae_elements``: values the decoder produces for the final IWAE bound
  (``iwae_k`` x ``max_examples`` x decoder outputs per example), its running time;
  ``iwae_pass_bytes``: the memory of one chunked pass (evaluate/bounds.py);
- ``logged_points``: metric points (steps / ``log_every`` x about 12 keys), the rows the
  job writes.

Data whose shape only loading tells (a user's npz) is taken as 3x64x64 unless the caller
knows better; its number of training examples, unknown, leaves ``logged_points`` bounded by
``train.max_steps`` only (None without it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ASSUMED_SHAPE = (3, 64, 64)
KEYS_PER_LOG = 12  # losses, KL terms, grad norm, lr, throughput, likelihood extras
AUTO_CHUNK_ELEMENTS = 4_000_000  # as vae_engine.evaluate.bounds (which imports torch)
FLOAT = 4


@dataclass(frozen=True)
class Estimate:
    parameters: int
    activation_bytes: int
    iwae_elements: int
    iwae_pass_bytes: int
    total_steps: int | None
    logged_points: int | None
    shape: tuple[int, int, int]


@dataclass(frozen=True)
class Limits:
    max_parameters: int
    max_activation_bytes: int
    max_iwae_elements: int
    max_logged_points: int


def _shape(spec: Any) -> tuple[int, int, int]:
    side = spec.dataset.side()
    return (getattr(spec.dataset, "channels", 1), side, side) if side else ASSUMED_SHAPE


def estimate(spec: Any, shape: tuple[int, int, int] | None = None,
             train_examples: int | None = None) -> Estimate:
    """The cost of a parsed :class:`~vae_engine.spec.TrainSpec` on (C, H, W) data."""
    shape = shape or _shape(spec)
    c, h, w = shape
    per_dim = 1 if spec.likelihood.kind in ("bernoulli", "continuous_bernoulli") else 2
    params, acts = spec.model.size_estimate(shape, per_dim * c)
    out = per_dim * c * h * w
    t, ev = spec.train, spec.eval
    # IWAE chunks as evaluate/bounds.py does: k_chunk samples of per_pass examples at a time
    budget = ev.iwae_chunk or max(1, AUTO_CHUNK_ELEMENTS // (c * h * w))
    k_chunk = min(ev.iwae_k, budget)
    per_pass = max(1, budget // k_chunk)
    n_train = train_examples or spec.dataset.train_examples()
    steps = None
    if n_train:
        steps = t.epochs * math.ceil(n_train / spec.optim.batch_size)
    if t.max_steps:
        steps = min(steps, t.max_steps) if steps else t.max_steps
    points = None if steps is None else math.ceil(steps / t.log_every) * KEYS_PER_LOG
    return Estimate(
        parameters=params,
        activation_bytes=3 * acts * spec.optim.batch_size * FLOAT,
        iwae_elements=ev.iwae_k * ev.max_examples * out,
        iwae_pass_bytes=k_chunk * per_pass * acts * FLOAT,
        total_steps=steps, logged_points=points, shape=shape,
    )


def _n(x: float) -> str:
    return f"{x:.3g}"


def _gb(x: float) -> str:
    return f"{x / 1024**3:.3g} GiB"


def over_budget(spec: Any, est: Estimate, limits: Limits) -> list[dict[str, str]]:
    """``[{"field", "message"}]``, one per exceeded limit, each with the estimate, the limit
    and the setting that holds it; [] within budget."""
    shape = "x".join(map(str, est.shape))
    problems = []
    if est.parameters > limits.max_parameters:
        problems.append({"field": spec.model.size_field, "message": (
            f"the model would have about {_n(est.parameters)} parameters on {shape} data; "
            f"this deployment allows {_n(limits.max_parameters)} (VAELAB_MAX_PARAMETERS)")})
    if est.activation_bytes > limits.max_activation_bytes:
        problems.append({"field": "optim.batch_size", "message": (
            f"one training batch of {spec.optim.batch_size} would hold about "
            f"{_gb(est.activation_bytes)} of activations; this deployment allows "
            f"{_gb(limits.max_activation_bytes)} (VAELAB_MAX_ACTIVATION_BYTES)")})
    if est.iwae_pass_bytes > limits.max_activation_bytes:
        problems.append({"field": "eval.iwae_chunk", "message": (
            f"one IWAE pass would hold about {_gb(est.iwae_pass_bytes)}; this deployment "
            f"allows {_gb(limits.max_activation_bytes)} (VAELAB_MAX_ACTIVATION_BYTES)")})
    if est.iwae_elements > limits.max_iwae_elements:
        problems.append({"field": "eval.iwae_k", "message": (
            f"the final IWAE (iwae_k {spec.eval.iwae_k} x max_examples "
            f"{spec.eval.max_examples}) would decode about {_n(est.iwae_elements)} values; "
            f"this deployment allows {_n(limits.max_iwae_elements)} "
            "(VAELAB_MAX_IWAE_ELEMENTS)")})
    if est.logged_points is not None and est.logged_points > limits.max_logged_points:
        problems.append({"field": "train.log_every", "message": (
            f"{est.total_steps} steps (train.epochs {spec.train.epochs}) logged every "
            f"{spec.train.log_every} would write about {_n(est.logged_points)} metric points; "
            f"this deployment allows {_n(limits.max_logged_points)} "
            "(VAELAB_MAX_LOGGED_POINTS)")})
    return problems
