"""Datasets. Importing this package registers every built-in dataset.

:func:`load_dataset` is the one entry point: it calls the loader registered under
``spec.name`` and then applies the spec's ``binarize`` mode:

- ``none``: the grey-level values in [0, 1], unchanged.
- ``static``: train and test are each binarized once (Bernoulli sample of the pixel
  intensities) with the fixed seeds ``BINARIZE_SEED`` (train) and ``BINARIZE_SEED + 1``
  (test). They are independent of the training seed on purpose: runs with different
  training seeds see the same binary data, so their test ELBOs are comparable.
- ``dynamic``: the test set is binarized exactly as in ``static`` (so test numbers of
  static and dynamic runs are computed on the same bits); the training set stays grey and
  ``bundle.dynamic_binarize`` is set, telling the trainer to call
  :func:`~vae_engine.data.binarize.binarize_batch` on every batch.

The import order of the dataset modules is the registration order, hence the order of the
spec's ``dataset`` union. Nothing here imports torch at import time (the spec imports every
dataset config); loaders import it when they run.

Loading is cached where it is slow: mnist5k and digits keep their parsed arrays per
process (read-only) and hand out fresh tensors on each call, so callers may modify what
they get. Generated (shapes) and user (npz) data are not cached: shapes renders in well
under a second, and a user's file may change between jobs.
"""

from __future__ import annotations

import logging
from typing import Any

# isort: off
from vae_engine.data import mnist5k, digits, shapes, npz  # noqa: F401  (registration, in order)
# isort: on
from vae_engine.data.base import DATASETS, DataBundle, DatasetConfig
from vae_engine.data.binarize import binarize_batch, binarize_static

logger = logging.getLogger(__name__)

BINARIZE_SEED = 1234  # static binarization: train uses this seed, test uses seed + 1


def apply_binarization(bundle: DataBundle, mode: str) -> DataBundle:
    """Return a bundle binarized according to ``mode`` (none | static | dynamic)."""
    if mode == "none":
        return bundle
    if mode not in ("static", "dynamic"):
        raise ValueError(f"unknown binarize mode {mode!r}")
    x_test = binarize_static(bundle.x_test, BINARIZE_SEED + 1)  # (N_test, C, H, W)
    if mode == "static":
        x_train = binarize_static(bundle.x_train, BINARIZE_SEED)  # (N_train, C, H, W)
    else:
        x_train = bundle.x_train
    return DataBundle(
        name=bundle.name,
        x_train=x_train,
        x_test=x_test,
        factors_train=bundle.factors_train,
        factors_test=bundle.factors_test,
        factor_names=list(bundle.factor_names),
        dynamic_binarize=mode == "dynamic",
        factors_generative=bundle.factors_generative,
        factor_discrete=list(bundle.factor_discrete),
        factor_sampler=bundle.factor_sampler,
    )


def load_dataset(spec: Any) -> DataBundle:
    """Load the dataset described by a dataset spec (``TrainSpec.dataset``) on the CPU."""
    loader = DATASETS.get(spec.name, "dataset.name")
    bundle = loader(spec)
    logger.info(
        "dataset %s: train %s, test %s, binarize=%s",
        spec.name, tuple(bundle.x_train.shape), tuple(bundle.x_test.shape), spec.binarize,
    )
    return apply_binarization(bundle, spec.binarize)


__all__ = [
    "BINARIZE_SEED",
    "DATASETS",
    "DataBundle",
    "DatasetConfig",
    "apply_binarization",
    "binarize_batch",
    "binarize_static",
    "load_dataset",
]
