"""NVAE KL balancing (Vahdat & Kautz 2020, appendix A; ``utils.kl_balancer`` and
``kl_balancer_coeff``; ENGINE_SPEC section 2.10; seed 000).

During the KL warm-up each group's KL is weighted by a detached coefficient

    c_g = mean_b |KL_bg| + 0.01;   c_g <- c_g / alpha_g;   c_g <- G c_g / sum_g c_g

so groups with a low KL are pushed to use more latent units and the coefficients sum to G.
The author's clarification (NVAE issue #26): the coefficient is *inversely* proportional to
the group's size (the paper's "proportional" is a typo); the code's redundant multiplication
by the total KL is dropped here since the normalisation cancels it.

alpha_g for a group at scale i (i = 0: the smallest spatial scale, at the top), with g_s
groups at that scale, normalised so that min alpha = 1:
square (2^i)^2 / g_s, equal 1, linear 2^i, sqrt sqrt(2^i).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from vae_engine.kl.base import MODIFIERS, SCHEMES, ModifierConfig
from vae_engine.models.config import grouped_archs

if TYPE_CHECKING:
    import torch

    from vae_engine.models.base import ModelOutput

ALPHA_FUNS = ("square", "equal", "linear", "sqrt")


def _alpha_at_scale(i: int, groups_at_scale: int, fun: str) -> float:
    if fun == "square":
        return (2**i) ** 2 / groups_at_scale
    if fun == "equal":
        return 1.0
    if fun == "linear":
        return float(2**i)
    if fun == "sqrt":
        return math.sqrt(2**i)
    raise ValueError(f"unknown balancing alpha {fun!r}; valid: {', '.join(ALPHA_FUNS)}")


def alpha_from_scales(group_scales: tuple[int, ...], fun: str) -> list[float]:
    """alpha_g for groups listed in top-down order with their scale indices (0 = smallest)."""
    counts = Counter(group_scales)
    alpha = [_alpha_at_scale(i, counts[i], fun) for i in group_scales]
    lo = min(alpha)
    return [a / lo for a in alpha]


def nvae_alpha(groups_per_scale: list[int], fun: str) -> list[float]:
    """NVAE's ``kl_balancer_coeff``: groups_per_scale listed largest scale first (top last);
    returns alpha in top-down order (the smallest scale's groups first)."""
    n = len(groups_per_scale)
    scales = [i for i in range(n) for _ in range(groups_per_scale[n - 1 - i])]
    return alpha_from_scales(tuple(scales), fun)


def balancing_coefficients(kl_groups: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """kl_groups (B, G), alpha (G,) -> detached coefficients (G,) summing to G."""
    c = kl_groups.detach().abs().mean(0) + 0.01  # (G,)
    c = c / alpha
    return kl_groups.shape[1] * c / c.sum()


def warmup_schedules() -> list[str]:
    """KL schedules with a warm-up phase, in registration order."""
    return [e.name for e in SCHEMES.entries() if e.config.warmup]


class NvaeBalancing(ModifierConfig):
    """Vahdat & Kautz 2020 (NVAE): per-group KL coefficients during warm-up."""

    section: ClassVar[str] = "balancing"
    paper: ClassVar[str] = (
        "Vahdat & Kautz 2020, NVAE (NeurIPS), appendix A; author's clarification in NVAE "
        "issue #26"
    )
    summary: ClassVar[str] = (
        "Per-group KL coefficients (sum = number of groups) during the KL warm-up, inversely "
        "proportional to group size (hierarchical models)."
    )

    kind: Literal["nvae"] = "nvae"
    alpha: Literal["square", "equal", "linear", "sqrt"] = Field(
        default="square",
        description="Relative group size alpha_i at scale i: (2^i)^2/groups (square), 1, 2^i, "
        "sqrt(2^i).",
    )

    def problems(self, spec: Any) -> list[str]:
        model, schedule = spec.model, spec.kl.schedule
        problems = []
        if model.latent_groups() < 2:
            problems.append(
                "kl.balancing: KL balancing needs a model with several latent groups "
                f"(model.arch {grouped_archs()}); model.arch {model.arch!r} has one group"
            )
        if not type(schedule).warmup:
            problems.append(
                "kl.balancing: NVAE balancing is applied only during a KL warm-up; schedule "
                f"{schedule.kind!r} has none (use one of: {', '.join(warmup_schedules())})"
            )
        return problems


_ALPHAS: dict[tuple[Any, ...], torch.Tensor] = {}  # nvae_coefficients' alpha per model shape


@MODIFIERS.register(NvaeBalancing)
def nvae_coefficients(out: ModelOutput, spec: NvaeBalancing, active: bool) -> torch.Tensor:
    """(G,) detached coefficients: NVAE's during warm-up, ones after."""
    import torch

    if out.group_sizes is None or out.group_scales is None:
        raise ValueError("kl.balancing needs a model with latent groups and scales")
    kl_groups = out.kl_groups()  # (B, G)
    if not active:
        return torch.ones(kl_groups.shape[1], device=kl_groups.device, dtype=kl_groups.dtype)
    # Built once per model shape: a copy from the host waits for the device, and has no
    # place in a step captured as a CUDA graph.
    key = (tuple(out.group_scales), spec.alpha, kl_groups.device, kl_groups.dtype)
    if key not in _ALPHAS:
        _ALPHAS[key] = torch.tensor(alpha_from_scales(out.group_scales, spec.alpha),
                                    device=kl_groups.device, dtype=kl_groups.dtype)
    return balancing_coefficients(kl_groups, _ALPHAS[key])
