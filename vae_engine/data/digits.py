"""scikit-learn's 8x8 handwritten digits (UCI optdigits test set), with a fixed split.

Source: ``sklearn.datasets.load_digits()``: 1,797 images of 8x8 pixels, integer values
0..16 (counts of set pixels in 4x4 blocks of the 32x32 originals; Alpaydin & Kaynak 1998),
rescaled here by 1/16 to [0, 1]. The file is *not* sorted by label (it cycles roughly through
0..9) and the class sizes differ (174..183).

Split rule: the same label-stratified, RNG-free rule as mnist5k
(:func:`vae_engine.data.mnist5k.stratified_split`) with every 6th example of each digit in
the test set: 1,501 train / 296 test (floor(n_class / 6) test examples per digit). A pure
function of the labels, hence identical on every machine and numpy version.
"""

from __future__ import annotations

import functools
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from vae_engine.data.base import BINARIZE_HELP, DATASETS, Binarize, DataBundle, DatasetConfig
from vae_engine.data.mnist5k import stratified_split

TEST_EVERY = 6  # 1 in 6 of each digit -> 1,501 train / 296 test


@functools.lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # heavy import, only when this dataset is used

    d = load_digits()
    images = (np.asarray(d.data, dtype=np.float64) / 16.0).astype(np.float32)
    images = images.reshape(-1, 1, 8, 8)  # (1797, 1, 8, 8)
    y = np.asarray(d.target, dtype=np.int64)  # (1797,)
    images.flags.writeable = False
    y.flags.writeable = False
    return images, y


class DigitsData(DatasetConfig):
    """scikit-learn's 1,797 8x8 digits (values 0..16 rescaled to [0, 1]); fixed split."""

    paper: ClassVar[str] = (
        "Alpaydin & Kaynak 1998, UCI Optical Recognition of Handwritten Digits (scikit-learn "
        "load_digits)"
    )
    image_size: ClassVar[int | None] = 8
    train_size: ClassVar[int | None] = 1501

    name: Literal["digits"] = "digits"
    binarize: Binarize = Field(default="none", description=BINARIZE_HELP)


@DATASETS.register(DigitsData)
def load_digits_dataset(spec: object | None = None) -> DataBundle:
    """8x8 digits: x (1501|296, 1, 8, 8) float32 in [0, 1]; factor "label"."""
    import torch  # not at module level: the spec imports this module

    images, y = _raw()
    train_idx, test_idx = stratified_split(y, TEST_EVERY)
    factors = torch.from_numpy(y.astype(np.float32)[:, None])  # (1797, 1)
    return DataBundle(
        name="digits",
        x_train=torch.from_numpy(images[train_idx]),  # (1501, 1, 8, 8), a copy
        x_test=torch.from_numpy(images[test_idx]),  # (296, 1, 8, 8)
        factors_train=factors[train_idx],  # (1501, 1)
        factors_test=factors[test_idx],  # (296, 1)
        factor_names=["label"],
    )
