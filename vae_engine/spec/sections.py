"""The spec's plain sections: optimizer, training loop and evaluation settings.

Everything here is a number or a fixed choice; components (datasets, models, likelihoods, KL
schemes) come from their registries (kl.py, train.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from vae_engine.evaluate.metrics import METRICS
from vae_engine.registry import Section


class OptimSpec(Section):
    lr: float = Field(default=1e-3, gt=0, le=10, description="Adam learning rate")
    batch_size: int = Field(default=64, ge=1, le=65536)
    betas: tuple[float, float] = Field(default=(0.9, 0.999), description="Adam betas")
    weight_decay: float = Field(default=0.0, ge=0)
    grad_clip: float | None = Field(
        default=None, gt=0, description="clip the global gradient norm to this value"
    )


class TrainSection(Section):
    epochs: int = Field(default=10, ge=1, le=100_000)
    max_steps: int | None = Field(
        default=None, ge=1, description="Stop after this many optimizer steps (caps epochs)."
    )
    seed: int = Field(default=0, ge=0)
    log_every: int = Field(default=50, ge=1)
    eval_every_epochs: int = Field(default=1, ge=0, description="0 = only the final evaluation.")
    checkpoint_every_epochs: int = Field(default=1, ge=0, description="0 = only at the end.")
    keep_checkpoints: int | None = Field(
        default=None, ge=1, description="The service keeps the last N checkpoints plus the "
        "best-ELBO and the final one; unset: the deployment's default.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = Field(
        default=False, description="Run the model's forward and backward through "
        "torch.compile (inductor; the first steps pay the compilation).")
    bf16: bool = Field(
        default=False, description="Run the forward under bfloat16 autocast (~1.4x the "
        "float32 step on an AVX512-BF16 CPU for the benchmark MLP; not yet timed on a GPU). "
        "The loss terms, the objective and the logs stay float32.")
    cuda_graph: bool | None = Field(
        default=None, description="Capture the whole training step as one CUDA graph and "
        "replay it (the first steps run eagerly). null: on when training on a GPU with a "
        "KL scheme that allows it; true: required (an error where it cannot be); false: off.")


class EvalSpec(Section):
    """Intermediate evaluations (every ``train.eval_every_epochs``) are cheap: ELBO, rate,
    distortion, active units, MI over the test split, and an IWAE with
    ``intermediate_iwae_k`` samples on the first ``intermediate_iwae_examples`` examples. The
    final evaluation adds the IWAE at ``iwae_k`` on ``max_examples`` examples and the
    ``metrics`` (disentanglement, fd_lenet...)."""

    iwae_k: int = Field(default=1000, ge=1, le=100_000,
                        description="IWAE samples at the final evaluation")
    max_examples: int = Field(default=1000, ge=1,
                              description="Test examples for ELBO/IWAE (MI uses the whole split)")
    intermediate_iwae_k: int = Field(
        default=10, ge=0, le=100_000, description="IWAE samples at intermediate evaluations; 0 "
        "skips the IWAE there")
    intermediate_iwae_examples: int = Field(
        default=200, ge=1, description="Test examples for the intermediate IWAE")
    metrics: list[str | dict[str, Any]] | None = Field(
        default=None, description="Extra metrics for the final evaluation, by name or as "
        "{name: ..., <parameter>: ...} (see the catalogue's metrics); null = every one that "
        "applies to the data set, [] = none")
    metrics_every_eval: bool = Field(
        default=False, description="Also compute the extra metrics at intermediate evaluations")
    iwae_chunk: int = Field(
        default=0, ge=0, description="Decoder samples per chunk for IWAE; 0 picks automatically."
    )
    n_samples: int = Field(default=64, ge=1, le=1024, description="Images in each sample grid.")
    au_threshold: float = Field(default=0.01, ge=0)

    @field_validator("metrics")
    @classmethod
    def _known_metrics(
        cls, entries: list[str | dict[str, Any]] | None
    ) -> list[str | dict[str, Any]] | None:
        if entries is None:
            return None
        problems, seen, out = [], set(), []
        for entry in entries:
            name = entry if isinstance(entry, str) else entry.get("name")
            if not isinstance(name, str) or name not in METRICS:
                problems.append(f"unknown metric {name!r}; valid: {', '.join(METRICS.names())}")
                continue
            if not isinstance(entry, str):
                try:
                    METRICS.config(name).model_validate(entry)
                except ValidationError as exc:
                    problems += [f"{name}.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                 for e in exc.errors()]
                    continue
            if name not in seen:
                seen.add(name)
                out.append(entry)
        if problems:
            raise ValueError("; ".join(problems))
        return out
