"""Dataset registry and the in-memory form every dataset is loaded into.

A dataset is loaded once into float32 tensors in [0, 1] of shape (N, C, H, W) and moved to
the training device whole: the training loop indexes tensors, with no per-example Python.

This module is importable without torch (the spec imports every dataset config): the
dataset modules import torch inside their loaders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from vae_engine.registry import ComponentConfig, Registry

if TYPE_CHECKING:
    import torch

Binarize = Literal["none", "static", "dynamic"]
BINARIZE_HELP = (
    "none: grey levels as is; static: one fixed Bernoulli sample of the data; dynamic: a fresh"
    " sample of every training batch (test set sampled once)"
)


class DatasetConfig(ComponentConfig):
    """Config of a dataset; ``image_size`` is its image side when known before loading."""

    image_size: ClassVar[int | None] = None
    channels: ClassVar[int] = 1
    train_size: ClassVar[int | None] = None  # training examples, when known before loading

    def side(self) -> int | None:
        """The image side in pixels, or None when only loading tells (a user's file)."""
        return self.image_size

    def train_examples(self) -> int | None:
        """Training examples, or None when only loading tells (the spec budget uses it)."""
        return self.train_size


@dataclass
class DataBundle:
    name: str
    x_train: torch.Tensor  # (N_train, C, H, W) float32 in [0, 1]
    x_test: torch.Tensor  # (N_test, C, H, W) float32 in [0, 1]
    factors_train: torch.Tensor | None = None  # (N_train, F) ground-truth factors, if known
    factors_test: torch.Tensor | None = None  # (N_test, F)
    factor_names: list[str] = field(default_factory=list)
    dynamic_binarize: bool = False  # binarize each training batch afresh (see binarize.py)
    # The factors are generative (disentanglement metrics apply), not just labels; which are
    # discrete; and, for generated data, a sampler (draw(n, rng), render(factors)) for the
    # FactorVAE / beta-VAE scores.
    factors_generative: bool = False
    factor_discrete: list[bool] = field(default_factory=list)
    factor_sampler: Any = None

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    @property
    def n_dims(self) -> int:
        c, h, w = self.shape
        return c * h * w

    @property
    def is_binary(self) -> bool:
        """True when every training value is exactly 0 or 1 (or dynamic binarization is on)."""
        if self.dynamic_binarize:
            return True
        x = self.x_train
        return bool(((x == 0) | (x == 1)).all())

    def to(self, device: torch.device | str) -> DataBundle:
        def mv(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return DataBundle(
            self.name, mv(self.x_train), mv(self.x_test), mv(self.factors_train),
            mv(self.factors_test), list(self.factor_names), self.dynamic_binarize,
            self.factors_generative, list(self.factor_discrete), self.factor_sampler,
        )


# name -> loader(spec) -> DataBundle (raw values, before binarization)
DATASETS: Registry[Callable[..., DataBundle]] = Registry("dataset", tag="name",
                                                         field="dataset.name")
