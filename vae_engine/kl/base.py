"""KL-weighting schemes: the KLScheme base class, its context and registry.

A scheme decides how the (possibly modified) rate term enters the training objective.
Schedules are pure functions of the step; controllers keep explicit state, updated once per
step by :meth:`KLScheme.update` after the loss is computed, so the new weight applies from the
next step (ENGINE_SPEC section 2). ``state_dict`` must be JSON-serialisable: it goes into the
checkpoint so that resume is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from vae_engine.registry import Registry


@dataclass(frozen=True)
class SchemeContext:
    data_dims: int  # N = C*H*W
    latent_dims: int  # M, all groups together
    total_steps: int  # T
    steps_per_epoch: int
    n_groups: int = 1
    # "sum" or "mean" (kl.reduction): in mean mode the objective receives the rate divided by
    # M, so a scheme that compares it with a target in nats (capacity) must scale the target.
    reduction: str = "sum"

    @property
    def rate_scale(self) -> float:
        """Factor from sum-mode nats to the units of the ``rate`` passed to ``objective``."""
        return 1.0 / self.latent_dims if self.reduction == "mean" else 1.0


class KLScheme:
    """Base: the objective ``distortion + weight(step) * rate``.

    Subclasses set ``summary`` and ``paper`` (shown in the catalogue) and, if they keep
    state, ``stateful = True`` with ``state_dict``/``load_state_dict``.

    ``distortion`` and ``rate`` are scalar tensors: batch means of per-example sums in sum
    mode; in mean mode the trainer passes them already divided by N and M.
    """

    summary: str = ""
    paper: str = ""
    stateful: bool = False

    def __init__(self, spec: Any, ctx: SchemeContext):
        self.spec = spec
        self.ctx = ctx

    def weight(self, step: int) -> float:
        raise NotImplementedError

    def objective(
        self, distortion: torch.Tensor, rate: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Return the loss and scalars to log. ``logs["beta"]`` is d(loss)/d(rate)."""
        w = self.weight(step)
        return distortion + w * rate, {"beta": w}

    def update(self, step: int, stats: dict[str, float]) -> None:  # noqa: B027
        """Controllers: consume this step's unweighted batch ``rate`` and ``distortion``."""

    def in_warmup(self, step: int) -> bool:
        """True while a warm-up is ramping the weight (used by NVAE KL balancing)."""
        return False

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027
        pass


# kind -> scheme class (constructed as cls(spec, ctx))
SCHEMES: Registry[type[KLScheme]] = Registry("KL schedule")
