"""Batch-statistics KL (seed 001; ENGINE_SPEC section 2.11).

Per latent dim j, over the batch of sampled z:
    m_j = mean_b z_bj,   v_j = var_b z_bj (biased),   KL_j = 0.5 (v_j + m_j^2 - 1 - log(v_j + eps))
i.e. the KL from a Gaussian moment-matched to the batch of codes to N(0, 1). It regularises
the aggregate posterior rather than each q(z|x); it is an estimate, not a bound, and it is
never reported as the rate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from vae_engine.kl.base import ESTIMATORS
from vae_engine.registry import ComponentConfig

if TYPE_CHECKING:
    import torch

    from vae_engine.models.base import ModelOutput

EPS = 1e-8  # keeps log finite when a dim has collapsed to a constant over the batch


def batch_stats_kl(z: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """z (B, M) -> (M,) KL of N(mean_b z, var_b z) to N(0, 1) per dim."""
    m = z.mean(0)  # (M,)
    v = z.var(0, unbiased=False)  # (M,)
    return 0.5 * (v + m.pow(2) - 1.0 - (v + eps).log())


class BatchStatsEstimator(ComponentConfig):
    """KL of a Gaussian moment-matched to the batch of z to N(0, I), per dim."""

    paper: ClassVar[str] = (
        "Moment-matched aggregate-posterior KL (ENGINE_SPEC 2.11), used with the dual-ascent "
        "target of Peng et al. 2019 (VDB)"
    )
    summary: ClassVar[str] = (
        "KL of a Gaussian moment-matched to the batch of z to N(0, I), per dim; an estimate of "
        "the aggregate posterior's mismatch, not a bound."
    )

    name: Literal["batch_stats"] = "batch_stats"

    def problems(self, spec: Any) -> list[str]:
        problems = []
        if spec.model.latent_groups() > 1:
            problems.append(
                "kl.estimator: 'batch_stats' matches the batch of z to N(0, I); a hierarchical "
                "model's groups have conditional priors - use 'analytic'"
            )
        fb = spec.kl.free_bits
        if fb is not None and fb.average == "per_sample":
            problems.append(
                "kl.free_bits.average: 'per_sample' has no meaning with the batch-statistics "
                "estimator (one KL per dim for the whole batch); use 'batch'"
            )
        if spec.optim.batch_size < 2:
            problems.append("kl.estimator: 'batch_stats' needs optim.batch_size >= 2")
        return problems


@ESTIMATORS.register(BatchStatsEstimator)
def batch_stats_estimate(out: ModelOutput) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(M,) KL of the whole batch and the summed value to log."""
    kl = batch_stats_kl(out.z)  # (M,)
    return kl, {"kl_batch_stats": kl.detach().sum()}  # read with the other logs
