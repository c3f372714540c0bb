"""Free bits (Kingma et al. 2016, "Improved variational inference with inverse autoregressive
flow", eq. 15; ENGINE_SPEC section 2.8): the rate term becomes

    sum_k max(lambda, mean_b KL_bk)        (average = "batch": the IAF form)
    mean_b sum_k max(lambda, KL_bk)        (average = "per_sample")

where k ranges over latent units (group = "per_dim") or over latent groups, each KL summed
over the group's units (group = "per_group"). Below lambda the term has no gradient, so the
encoder is free to spend lambda nats per unit/group. This only shapes the training objective;
the reported rate is always the unclamped analytic one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from vae_engine.kl.base import MODIFIERS, ModifierConfig
from vae_engine.models.config import grouped_archs, is_grouped

if TYPE_CHECKING:
    import torch


class FreeBitsSpec(ModifierConfig):
    """Kingma et al. 2016 (IAF): the rate term sum_k max(lambda, KL_k) over groups k."""

    # "lambda" is a Python keyword: the field is lambda_, read and written as "lambda".
    model_config = ConfigDict(extra="forbid", validate_by_name=True, serialize_by_alias=True)

    section: ClassVar[str] = "free_bits"
    paper: ClassVar[str] = (
        "Kingma et al. 2016, Improved Variational Inference with Inverse Autoregressive Flow "
        "(NeurIPS)"
    )
    summary: ClassVar[str] = (
        "Rate term sum_k max(lambda, KL_k): each latent unit or group gets lambda free nats "
        "(batch or per-sample clamping)."
    )

    lambda_: float = Field(
        default=0.25, alias="lambda", gt=0, le=1e4,
        description="Free nats per group (per latent unit in per_dim mode).",
    )
    group: Literal["per_dim", "per_group"] = Field(
        default="per_dim", description="Clamp each latent unit, or each latent group's sum."
    )
    average: Literal["batch", "per_sample"] = Field(
        default="batch",
        description="batch: clamp the batch mean (the IAF form); per_sample: clamp each example.",
    )

    def problems(self, spec: Any) -> list[str]:
        if self.group == "per_group" and not is_grouped(spec.model):
            return [
                "kl.free_bits.group: 'per_group' needs a model with latent groups (model.arch "
                f"{grouped_archs()}); use 'per_dim' with model.arch {spec.model.arch!r}"
            ]
        return []


def free_bits_terms(
    kl: torch.Tensor, group_sizes: tuple[int, ...] | None, lam: float, group: str, average: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clamped rate per latent group and the fraction of clamped entries (a tensor: it is
    logged, read with the other logs, never here).

    kl: (B, M) per-example, per-unit KL, or (M,) already a batch-level KL (batch statistics).
    Returns ((G,) tensor whose sum is the free-bits rate term, fraction clamped).
    """
    from vae_engine.models.base import split_groups  # torch: only once training runs

    if kl.dim() == 1:
        if average != "batch":
            raise ValueError("free bits 'per_sample' needs a per-example KL")
        kl = kl.unsqueeze(0)  # (1, M): one "example", the batch
    if group == "per_dim":
        units = kl  # (B, M)
    elif group == "per_group":
        units = split_groups(kl, group_sizes)  # (B, G)
    else:
        raise ValueError(f"unknown free-bits group {group!r}")
    if average == "batch":
        mean = units.mean(0)  # (K,)
        clamped, frac = mean.clamp_min(lam), (mean < lam).float().mean()
    elif average == "per_sample":
        clamped, frac = units.clamp_min(lam).mean(0), (units < lam).float().mean()
    else:
        raise ValueError(f"unknown free-bits average {average!r}")
    per_group = split_groups(clamped, group_sizes) if group == "per_dim" else clamped
    return per_group, frac


@MODIFIERS.register(FreeBitsSpec)
def apply_free_bits(
    kl: torch.Tensor, group_sizes: tuple[int, ...] | None, spec: FreeBitsSpec
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The free-bits rate terms (G,) and what to log."""
    terms, frac = free_bits_terms(kl, group_sizes, spec.lambda_, spec.group, spec.average)
    return terms, {"free_bits_clamped": frac}
