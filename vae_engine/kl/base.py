"""KL-weighting schemes: the KLScheme base class, its context and registry.

A scheme decides how the (possibly modified) rate term enters the training objective.
Schedules are pure functions of the step; controllers keep explicit state, updated once per
step by :meth:`KLScheme.update` after the loss is computed, so the new weight applies from the
next step (ENGINE_SPEC section 2). ``state_dict`` must be JSON-serialisable: it goes into the
checkpoint so that resume is exact.

Three registries live here, each holding a config model and its implementation: the KL
schedules and controllers (``kl.schedule``), the rate estimators (``kl.estimator``) and the
rate modifiers (``kl.free_bits``, ``kl.balancing``). Torch is only named in annotations, so
the scheme modules import without it (the API process validates specs without torch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from vae_engine.registry import ComponentConfig, Registry

if TYPE_CHECKING:
    import torch


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

    The config registered with a subclass carries its ``summary`` and ``paper`` (shown in
    the catalogue); a subclass that keeps state implements ``state_dict``/``load_state_dict``
    and its config sets ``stateful = True``.

    ``distortion`` and ``rate`` are scalar tensors: batch means of per-example sums in sum
    mode; in mean mode the trainer passes them already divided by N and M.
    """

    # Names of the attributes that hold device tensors (controllers' state): moved by ``to``.
    tensor_fields: ClassVar[tuple[str, ...]] = ()
    # True: ``update`` takes the step's statistics as device tensors and never reads them on
    # the host (the built-in controllers). False (a scheme written for floats): the trainer
    # reads them for it - one device sync per step, the speed of the engine before issue 14.
    device_stats: ClassVar[bool] = False
    # The methods (of the step) whose Python floats ``objective`` or ``update`` use: a step
    # captured as a CUDA graph (vae_engine/graphed.py) reads them on the host and passes
    # each as a device scalar. ``graph_safe``: a scheme that overrides ``objective`` or
    # ``update`` sets it once nothing else in them depends on the step on the host.
    step_values: ClassVar[tuple[str, ...]] = ("weight",)
    graph_safe: ClassVar[bool] = False

    def __init__(self, spec: Any, ctx: SchemeContext):
        self.spec = spec
        self.ctx = ctx
        self.device: Any = "cpu"

    def to(self, device: Any) -> KLScheme:
        """Keep the state on ``device``, next to the model: updating it then needs no copy
        to the host, so a training step never waits for the device (issue 14)."""
        self.device = device
        for name in self.tensor_fields:
            setattr(self, name, getattr(self, name).to(device))
        return self

    def scalar(self, value: float) -> torch.Tensor:
        """A float64 state scalar on the scheme's device: float64, so the controllers' update
        rules compute what the same formulas give with Python floats."""
        import torch

        return torch.tensor(float(value), dtype=torch.float64, device=self.device)

    def weight(self, step: int) -> float | torch.Tensor:
        """The KL weight at ``step``: a float for schedules (a function of the step), a
        float64 device tensor for controllers (their state)."""
        raise NotImplementedError

    def objective(
        self, distortion: torch.Tensor, rate: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
        """Return the loss and scalars to log (floats or device tensors, read by the trainer
        at its next read of the device). ``logs["beta"]`` is d(loss)/d(rate)."""
        w = self.weight(step)
        return distortion + as_weight(w, rate) * rate, {"beta": w}

    def update(self, step: int, stats: dict[str, Any]) -> None:  # noqa: B027
        """Controllers: consume this step's unweighted batch ``rate`` and ``distortion``
        (scalar tensors on the device, or floats). An implementation must not read them on
        the host (no ``float()``/``.item()``): the step stays free of device syncs. It
        assigns new tensors to its state (never updates them in place), so values logged
        earlier keep their step's value."""

    def in_warmup(self, step: int) -> bool:
        """True while a warm-up is ramping the weight (used by NVAE KL balancing)."""
        return False

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027
        pass


def as_weight(w: Any, like: torch.Tensor) -> Any:
    """A weight ready to multiply ``like``: a float as is; a (float64) tensor rounded to
    ``like``'s dtype, which is what a Python float multiplying it would be rounded to."""
    return w.to(like.dtype) if hasattr(w, "dtype") else w


def stat(stats: dict[str, Any], key: str, device: Any) -> torch.Tensor:
    """``stats[key]`` as a float64 tensor on ``device`` (a float from a test is accepted)."""
    import torch

    v = stats[key]
    if torch.is_tensor(v):
        return v.detach().to(device=device, dtype=torch.float64)
    return torch.tensor(float(v), dtype=torch.float64, device=device)


class ModifierConfig(ComponentConfig):
    """Config of a rate modifier; ``section`` is the field of ``kl`` it occupies."""

    section: ClassVar[str] = ""

    @classmethod
    def key(cls) -> str:
        """Registry name: the section, plus the kind when the section is a union."""
        kind = cls.model_fields.get("kind")
        return f"{cls.section}.{kind.default}" if kind is not None else cls.section


# kind -> scheme class (constructed as cls(spec, ctx))
SCHEMES: Registry[type[KLScheme]] = Registry("KL schedule", tag="kind", field="kl.schedule.kind")
# name -> estimate(out) -> (per-unit KL: (B, M) per example or (M,) for the batch, logs)
ESTIMATORS: Registry[Callable[..., Any]] = Registry("KL estimator", tag="name",
                                                     field="kl.estimator")
# "free_bits" | "balancing.<kind>" -> the function applying the modifier (see rate.py)
MODIFIERS: Registry[Callable[..., Any]] = Registry("rate modifier")
