"""The spec's plain sections: optimizer, training loop and evaluation settings.

Everything here is a number or a fixed choice; components (datasets, models, likelihoods, KL
schemes) come from their registries (kl.py, train.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

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


class EvalSpec(Section):
    iwae_k: int = Field(default=1000, ge=1, le=100_000)
    max_examples: int = Field(default=1000, ge=1)
    iwae_chunk: int = Field(
        default=0, ge=0, description="Decoder samples per chunk for IWAE; 0 picks automatically."
    )
    n_samples: int = Field(default=64, ge=1, le=1024, description="Images in each sample grid.")
    au_threshold: float = Field(default=0.01, ge=0)
