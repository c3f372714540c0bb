"""Tests for the dataset layer: built-in datasets, splits, shapes factors, binarization, npz."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vae_engine.data import (
    BINARIZE_SEED,
    DATASETS,
    binarize_batch,
    binarize_static,
    load_dataset,
)
from vae_engine.data.digits import DigitsData
from vae_engine.data.mnist5k import Mnist5kData, stratified_split
from vae_engine.data.npz import NpzData
from vae_engine.data.shapes import FACTOR_NAMES, ShapesData, render_shapes, sample_factors
from vae_engine.errors import DataError, SpecError


def sha(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()


SMALL_SHAPES = ShapesData(n_train=64, n_test=16, size=32, seed=0)
# sha256 of SMALL_SHAPES.x_train (float32 bytes); changes only if the generator changes
SHAPES_GOLDEN = "07f0e14375086e6be0d70704e6e5522f49f4eb969fa57205705c6bdd9dd7808a"

# ----------------------------------------------------------------------- every dataset


# Shapes, dtypes and ranges of every registered dataset: test_contracts.py.


def test_registry_lists_all_and_rejects_unknown():
    valid = ", ".join(DATASETS.names())
    with pytest.raises(SpecError, match=f"unknown dataset 'nope'; valid: {valid}$"):
        load_dataset(SimpleNamespace(name="nope", binarize="none"))


# ----------------------------------------------------------------------- fixed splits


def test_stratified_split_rule():
    labels = np.array([1, 0, 1, 0, 1, 0, 1, 1, 0])  # class 0 at 1,3,5,8; class 1 at 0,2,4,6,7
    train, test = stratified_split(labels, 2)
    # rank 1 and 3 of each class go to test; order = (rank, label)
    assert test.tolist() == [3, 2, 8, 6]
    assert train.tolist() == [1, 0, 5, 4, 7]
    assert sorted(train.tolist() + test.tolist()) == list(range(9))


def test_mnist5k_split_is_fixed_and_stratified():
    a, b = load_dataset(Mnist5kData()), load_dataset(Mnist5kData())
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.x_train, b.x_train)
    labels_test = a.factors_test[:, 0].long()
    assert torch.bincount(labels_test).tolist() == [100] * 10
    assert torch.bincount(a.factors_train[:, 0].long()).tolist() == [400] * 10
    assert labels_test[:10].tolist() == list(range(10))  # digits interleave
    # Golden checksums of the 0..255 pixel values: the split is the same on every machine.
    u8 = lambda x: (x * 255).round().to(torch.uint8)  # noqa: E731
    assert torch.equal(u8(a.x_test).float() / 255, a.x_test)
    assert sha(u8(a.x_train)) == "5e77c51b65c39a4c63d7f7c7f8c08ecc09a52faa7d4360fb22ae303a905083d3"
    assert sha(u8(a.x_test)) == "e496e676b11588f630cde4c38854758c53dfba7fd1c56afd8c4653c07f73d684"


def test_digits_split_is_fixed():
    b = load_dataset(DigitsData())
    u16 = (b.x_test * 16).round().to(torch.uint8)
    assert torch.equal(u16.float() / 16, b.x_test)  # values are exactly k / 16
    assert sha(u16) == "d27da24ae5aba43ffb56bfdd89188360cfb5678bff828a592572927de4f19bc9"
    assert torch.bincount(b.factors_test[:, 0].long()).tolist() == [29, 30, 29, 30, 30, 30,
                                                                    30, 29, 29, 30]


def test_cached_datasets_cannot_be_corrupted_by_callers():
    a = load_dataset(DigitsData())
    before = a.x_test.clone()
    a.x_test.zero_()
    a.factors_test.zero_()
    b = load_dataset(DigitsData())
    assert torch.equal(b.x_test, before) and b.factors_test.max() == 9


# ----------------------------------------------------------------------- shapes


def test_shapes_deterministic_in_seed():
    a, b = load_dataset(SMALL_SHAPES), load_dataset(SMALL_SHAPES)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    assert torch.equal(a.factors_train, b.factors_train)
    # golden bytes: same images on every machine and run
    assert sha(a.x_train) == SHAPES_GOLDEN
    c = load_dataset(SMALL_SHAPES.model_copy(update={"seed": 1}))
    assert not torch.equal(a.x_train, c.x_train)
    assert not torch.equal(a.factors_test, c.factors_test)


def test_shapes_smaller_n_gives_a_prefix_and_the_same_test_set():
    a = load_dataset(SMALL_SHAPES)
    b = load_dataset(SMALL_SHAPES.model_copy(update={"n_train": 32}))
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.x_train[:32], b.x_train)


def test_shapes_factors():
    b = load_dataset(ShapesData(n_train=2000, n_test=16, size=32, seed=3))
    assert b.factor_names == FACTOR_NAMES == ["shape", "scale", "orientation", "pos_x", "pos_y"]
    f = b.factors_train.double()  # (2000, 5)
    assert b.factors_train.dtype == torch.float32
    n_values = [len(torch.unique(f[:, j])) for j in range(5)]
    assert n_values == [3, 6, 40, 32, 32]  # every value appears in 2000 uniform draws
    assert set(f[:, 0].tolist()) == {0.0, 1.0, 2.0}
    assert f[:, 1].min() == pytest.approx(0.5) and f[:, 1].max() == pytest.approx(1.0)
    assert f[:, 2].min() == 0.0 and f[:, 2].max() == pytest.approx(39 * 2 * math.pi / 40)
    assert f[:, 3:].min() == 0.0 and f[:, 3:].max() == 1.0
    assert b.is_binary


BASE = [2.0, 0.8, 0.3, 0.5, 0.5]  # a heart: asymmetric, so every factor is visible


@pytest.mark.parametrize(
    ("col", "value"),
    [(0, 0.0), (0, 1.0), (1, 0.5), (2, 2 * math.pi / 40 * 7), (3, 0.8), (4, 0.2)],
    ids=["shape-square", "shape-ellipse", "scale", "orientation", "pos_x", "pos_y"],
)
@pytest.mark.parametrize("size", [32, 64])
def test_each_factor_changes_the_image(col, value, size):
    f = torch.tensor([BASE, BASE])
    f[1, col] = value
    x = render_shapes(f, size)  # (2, 1, size, size)
    assert x[0].sum() > 10 and x[1].sum() > 10
    assert (x[0] != x[1]).sum() >= 4


def test_shapes_geometry():
    # x moves right with pos_x, down with pos_y, area grows with scale
    f = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0, 1.0],
                      [0.0, 0.5, 0.0, 0.5, 0.5]])
    x = render_shapes(f, 64)[:, 0]  # (3, 64, 64)
    cols = torch.arange(64.0)
    cx = [(img.sum(0) * cols).sum() / img.sum() for img in x]
    cy = [(img.sum(1) * cols).sum() / img.sum() for img in x]
    assert cx[0] < 20 < 44 < cx[1] and cy[0] < 20 < 44 < cy[1]
    area = x.sum((1, 2)).tolist()
    assert area[0] == pytest.approx(4 * area[2], rel=0.15)  # area ~ scale^2
    assert area[0] == pytest.approx((0.3 * 64) ** 2, rel=0.1)  # square side 0.3 * 64


def test_shapes_stay_inside_the_frame():
    # every shape at full scale, every orientation, in all four corners
    rows = [[s, 1.0, k * 2 * math.pi / 40, px, py]
            for s in range(3) for k in range(40) for px in (0, 1) for py in (0, 1)]
    x = render_shapes(torch.tensor(rows), 64)[:, 0]  # (480, 64, 64)
    border = x[:, 0, :].sum() + x[:, -1, :].sum() + x[:, :, 0].sum() + x[:, :, -1].sum()
    assert border == 0 and (x.sum((1, 2)) > 50).all()


def test_shapes_render_speed():
    f = sample_factors(9000, 0, 0)
    # CPU time of this process: rendering is single-threaded numpy, so on an idle machine this
    # equals wall time, and it does not fail when other jobs share the machine.
    t0 = time.process_time()
    x = render_shapes(f, 64)
    took = time.process_time() - t0
    assert x.shape == (9000, 1, 64, 64)
    assert took < 2.0, f"rendering 9000 64x64 images took {took:.2f} s of CPU"


# ----------------------------------------------------------------------- binarization


def test_binarize_static_is_binary_deterministic_and_unbiased():
    torch.manual_seed(0)
    x = torch.rand(200, 1, 28, 28)
    a, b = binarize_static(x, 7), binarize_static(x, 7)
    assert torch.equal(a, b) and a.dtype == x.dtype and a.shape == x.shape
    assert set(torch.unique(a).tolist()) <= {0.0, 1.0}
    assert not torch.equal(a, binarize_static(x, 8))
    # E[bit] = x: 156,800 pixels, std of the mean < 0.0013; tolerance 0.01
    assert (a.mean() - x.mean()).abs() < 0.01
    assert torch.equal(binarize_static(torch.tensor([0.0, 1.0]), 0), torch.tensor([0.0, 1.0]))


def test_binarize_batch_fresh_and_reproducible_with_generator():
    x = torch.full((64, 1, 8, 8), 0.5)
    a, b = binarize_batch(x), binarize_batch(x)
    assert not torch.equal(a, b)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(binarize_batch(x, g1), binarize_batch(x, g2))


def test_static_binarization_of_a_dataset():
    grey = load_dataset(DigitsData())
    a = load_dataset(DigitsData(binarize="static"))
    b = load_dataset(DigitsData(binarize="static"))
    for x in (a.x_train, a.x_test):
        assert set(torch.unique(x).tolist()) == {0.0, 1.0}
    assert a.is_binary and not grey.is_binary and not a.dynamic_binarize
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    assert torch.equal(a.x_test, binarize_static(grey.x_test, BINARIZE_SEED + 1))
    assert torch.equal(a.factors_train, grey.factors_train)


def test_dynamic_binarization_flags_train_and_binarizes_test():
    grey = load_dataset(DigitsData())
    dyn = load_dataset(DigitsData(binarize="dynamic"))
    static = load_dataset(DigitsData(binarize="static"))
    assert dyn.dynamic_binarize and dyn.is_binary
    assert torch.equal(dyn.x_train, grey.x_train)  # stays grey; the trainer samples batches
    assert set(torch.unique(dyn.x_test).tolist()) == {0.0, 1.0}
    assert torch.equal(dyn.x_test, static.x_test)  # same test bits as static runs


# ----------------------------------------------------------------------- npz


def _imgs(n: int = 5, shape: tuple[int, ...] = (8, 8)) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def _save(**arrays: np.ndarray) -> Callable[[Path], None]:
    return lambda p: np.savez(p, **arrays)


def _write_text(p: Path) -> None:
    p.write_text("x_train,x_test\n1,2\n")


def _write_npy(p: Path) -> None:
    with open(p, "wb") as fh:
        np.save(fh, _imgs())


def _with_nan(fill: float) -> Callable[[Path], None]:
    x = np.full((3, 8, 8), 0.5, dtype=np.float32)
    x[1, 2, 3] = fill
    return _save(x_train=x, x_test=np.full((2, 8, 8), 0.5, dtype=np.float32))


BAD_NPZ = {
    "missing-file": (None, "npz file not found"),
    "not-a-zip": (_write_text, "is not an .npz archive"),
    "npy-not-npz": (_write_npy, "is not an .npz archive"),
    "missing-key": (_save(x_train=_imgs(), images=_imgs()),
                    "has no x_test; keys present: x_train, images"),
    "missing-both": (_save(data=_imgs()), "has no x_train or x_test; keys present: data"),
    "object-array": (_save(x_train=np.array([_imgs(), None], dtype=object), x_test=_imgs()),
                     "x_train is an object array (pickled data is refused"),
    "ndim-2": (_save(x_train=_imgs(5, (64,)), x_test=_imgs()), "x_train has 2 dimensions"),
    "ndim-5": (_save(x_train=_imgs(), x_test=_imgs(2, (1, 1, 8, 8))), "x_test has 5 dimensions"),
    "channels-2": (_save(x_train=_imgs(5, (2, 8, 8)), x_test=_imgs()),
                   "expected N x C x H x W with C in {1, 3}"),
    "channels-last": (_save(x_train=_imgs(5, (8, 8, 3)), x_test=_imgs(5, (8, 8, 3))),
                      "looks channels-last"),
    "channel-mismatch": (_save(x_train=_imgs(5, (1, 8, 8)), x_test=_imgs(5, (3, 8, 8))),
                         "x_train and x_test differ in channels"),
    "hw-mismatch": (_save(x_train=_imgs(5, (8, 8)), x_test=_imgs(5, (8, 9))),
                    "x_train and x_test differ in height/width"),
    "nan": (_with_nan(np.nan), "x_train contains 1 NaN or infinite values"),
    "inf": (_with_nan(np.inf), "x_train contains 1 NaN or infinite values"),
    "float-0-255": (_save(x_train=_imgs().astype(np.float32), x_test=_imgs()),
                    "must lie in [0, 1] (divide by 255?)"),
    "float-negative": (_with_nan(-0.5), "x_train float values span [-0.5, 0.5]"),
    "empty": (_save(x_train=_imgs(), x_test=np.zeros((0, 8, 8), np.uint8)), "x_test is empty"),
    "tiny-images": (_save(x_train=_imgs(5, (3, 8)), x_test=_imgs(5, (3, 8))),
                    "x_train images are 3x8 pixels; each side must be at least 4"),
    "int64": (_save(x_train=_imgs().astype(np.int64), x_test=_imgs()),
              "x_train has dtype int64; expected uint8"),
    "y-train-only": (_save(x_train=_imgs(), x_test=_imgs(), y_train=np.arange(5)),
                     "has y_train but no y_test"),
    "y-wrong-length": (_save(x_train=_imgs(), x_test=_imgs(3), y_train=np.arange(5),
                             y_test=np.arange(4)), "y_test has 4 rows but there are 3 images"),
}


@pytest.mark.parametrize("case", list(BAD_NPZ), ids=list(BAD_NPZ))
def test_bad_npz_raises_data_error_naming_the_problem(case, tmp_path):
    write, message = BAD_NPZ[case]
    path = tmp_path / "data.npz"
    if write is not None:
        write(path)
    with pytest.raises(DataError) as info:
        load_dataset(NpzData(path=str(path)))
    assert message in str(info.value)


def test_good_npz_uint8_nhw(tmp_path):
    path = tmp_path / "good.npz"
    x_train, x_test = _imgs(6, (10, 12)), _imgs(4, (10, 12))
    np.savez_compressed(path, x_train=x_train, x_test=x_test)
    b = load_dataset(NpzData(path=str(path)))
    assert b.name == "npz" and b.shape == (1, 10, 12)
    assert b.x_train.shape == (6, 1, 10, 12) and b.x_test.dtype == torch.float32
    assert torch.allclose(b.x_train[:, 0], torch.from_numpy(x_train).float() / 255)
    assert b.factors_train is None and b.factor_names == []


def test_good_npz_float_nchw_with_labels(tmp_path):
    path = tmp_path / "good.npz"
    rng = np.random.default_rng(1)
    x_train = rng.random((6, 3, 16, 16))  # float64
    x_test = rng.random((4, 3, 16, 16)).astype(np.float32)
    np.savez(path, x_train=x_train, x_test=x_test, y_train=np.arange(6) % 2,
             y_test=np.arange(4) % 2)
    b = load_dataset(NpzData(path=str(path), binarize="static"))
    assert b.shape == (3, 16, 16) and b.x_train.dtype == torch.float32
    assert b.is_binary and b.factor_names == ["y"]
    assert b.factors_train.shape == (6, 1) and b.factors_test[:, 0].tolist() == [0, 1, 0, 1]
    grey = load_dataset(NpzData(path=str(path)))
    assert torch.allclose(grey.x_test, torch.from_numpy(x_test))

