"""A user-supplied ``.npz`` archive (numpy's zip of ``.npy`` arrays) with a train/test split.

Required keys ``x_train`` and ``x_test``: images of shape (N, H, W) (one channel is added) or
(N, C, H, W) with C in {1, 3}; dtype uint8 (0..255, divided by 255), bool, or float with every
value in [0, 1]. Optional ``y_train`` / ``y_test`` (both or neither): numeric labels or
factors, shape (N,) or (N, F), returned as ``factors_*``. Or ``factors_train`` /
``factors_test`` (N, K) with an optional ``factor_names`` (K strings): *generative* factors,
on which the disentanglement metrics (MIG, SAP, DCI) are computed; a factor with at most
``MAX_DISCRETE_VALUES`` distinct values is treated as discrete, others as continuous.

The file is read with ``np.load(path, allow_pickle=False)``: an ``.npz`` may contain pickled
object arrays, and unpickling a user's file would execute arbitrary code. Every check raises
:class:`DataError` with a message that names the array and the problem, because the message
is all a user of the API gets to see.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from vae_engine.data.base import BINARIZE_HELP, DATASETS, Binarize, DataBundle, DatasetConfig
from vae_engine.errors import DataError

logger = logging.getLogger(__name__)

MIN_SIDE = 4  # smallest image side the architectures accept
MAX_DISCRETE_VALUES = 100  # a generative factor with more distinct values is continuous


def _read_array(npz: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    try:
        return npz[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(
                f"{path}: {key} is an object array (pickled data is refused for safety); "
                "save it as a numeric array, e.g. np.asarray(x, dtype=np.uint8)"
            ) from None
        raise DataError(f"{path}: cannot read {key}: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: cannot read {key}: the archive is damaged ({exc})") from None


def _to_images(x: np.ndarray, key: str) -> np.ndarray:
    """Validate one image array and return it as float32 (N, C, H, W) in [0, 1]."""
    if x.dtype == object:
        raise DataError(f"{key} is an object array; save a numeric array")
    if x.ndim == 3:
        x = x[:, None]  # (N, 1, H, W)
    elif x.ndim == 4:
        if x.shape[1] not in (1, 3):
            hint = ""
            if x.shape[3] in (1, 3):
                hint = " (it looks channels-last; use x.transpose(0, 3, 1, 2))"
            raise DataError(
                f"{key} has shape {tuple(x.shape)}: expected N x C x H x W with C in "
                f"{{1, 3}}{hint}"
            )
    else:
        raise DataError(
            f"{key} has {x.ndim} dimensions (shape {tuple(x.shape)}); expected N x H x W "
            "or N x C x H x W"
        )
    if x.shape[0] == 0:
        raise DataError(f"{key} is empty (shape {tuple(x.shape)})")
    h, w = x.shape[2], x.shape[3]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise DataError(
            f"{key} images are {h}x{w} pixels; each side must be at least {MIN_SIDE}"
        )

    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if x.dtype == np.bool_:
        return x.astype(np.float32)
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(
            f"{key} has dtype {x.dtype}; expected uint8 (0..255) or float in [0, 1]"
        )
    finite = np.isfinite(x)
    if not finite.all():
        n_bad = int(x.size - finite.sum())
        raise DataError(f"{key} contains {n_bad} NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        hint = " (divide by 255?)" if hi > 1.0 and hi <= 255.0 and lo >= 0.0 else ""
        raise DataError(
            f"{key} float values span [{lo:g}, {hi:g}]; they must lie in [0, 1]{hint}"
        )
    return x.astype(np.float32)


def _to_factors(y: np.ndarray, key: str, n: int) -> np.ndarray:
    """Validate labels/factors for ``n`` images; return float32 (n, F)."""
    if y.dtype == object or not (
        np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_
    ):
        raise DataError(f"{key} has dtype {y.dtype}; expected numbers")
    if y.ndim == 1:
        y = y[:, None]  # (n, 1)
    if y.ndim != 2:
        raise DataError(f"{key} has shape {tuple(y.shape)}; expected (N,) or (N, F)")
    if y.shape[0] != n:
        raise DataError(f"{key} has {y.shape[0]} rows but there are {n} images")
    y = y.astype(np.float32)
    if not np.isfinite(y).all():
        raise DataError(f"{key} contains NaN or infinite values")
    return y


def check_npz(path: str | Path) -> dict[str, Any]:
    """Validate a user ``.npz`` exactly as training will read it, with numpy only (no
    torch: the API calls it on an upload). Returns what it holds: ``shape`` (C, H, W),
    ``dtype`` (as stored), ``train_examples``, ``test_examples``, ``factors`` (names).
    Raises :class:`DataError`."""
    arrays = _load_arrays(Path(path))
    return {"shape": list(arrays["x_train"].shape[1:]), "dtype": arrays["dtype"],
            "train_examples": int(arrays["x_train"].shape[0]),
            "test_examples": int(arrays["x_test"].shape[0]), "factors": arrays["names"]}


def read_npz(path: str | Path) -> DataBundle:
    """Load and validate a user ``.npz``; see the module docstring for the format."""
    import torch  # not at module level: the spec imports this module

    p = Path(path)
    a = _load_arrays(p)
    logger.info("loaded %s: train %s, test %s", p, a["x_train"].shape, a["x_test"].shape)
    f_train, f_test = a["f_train"], a["f_test"]
    return DataBundle(
        name="npz",
        x_train=torch.from_numpy(a["x_train"]),
        x_test=torch.from_numpy(a["x_test"]),
        factors_train=None if f_train is None else torch.from_numpy(f_train),
        factors_test=None if f_test is None else torch.from_numpy(f_test),
        factor_names=a["names"],
        factors_generative=a["generative"],
        factor_discrete=a["discrete"],
    )


def _load_arrays(p: Path) -> dict[str, Any]:
    """Every check of the format; the validated arrays (float32) and the stored dtype."""
    if not p.is_file():
        raise DataError(f"npz file not found: {p}")
    if not zipfile.is_zipfile(p):
        raise DataError(
            f"{p} is not an .npz archive (not a zip file); save it with "
            "np.savez(path, x_train=..., x_test=...)"
        )
    try:
        npz = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{p} cannot be opened as an .npz archive: {exc}") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{p} holds a single array, not an .npz archive of named arrays")
    with npz:
        keys = list(npz.files)
        missing = [k for k in ("x_train", "x_test") if k not in keys]
        if missing:
            have = ", ".join(keys) or "none"
            raise DataError(f"{p} has no {' or '.join(missing)}; keys present: {have}")
        raw = {k: _read_array(npz, k, p) for k in ("x_train", "x_test", "y_train", "y_test",
                                                   "factors_train", "factors_test",
                                                   "factor_names") if k in keys}

    dtype = str(raw["x_train"].dtype)
    x_train = _to_images(raw["x_train"], "x_train")  # (N_train, C, H, W)
    x_test = _to_images(raw["x_test"], "x_test")  # (N_test, C, H, W)
    if x_train.shape[1:] != x_test.shape[1:]:
        c1, h1, w1 = x_train.shape[1:]
        c2, h2, w2 = x_test.shape[1:]
        what = "channels" if c1 != c2 else "height/width"
        raise DataError(
            f"x_train and x_test differ in {what}: C x H x W = {c1}x{h1}x{w1} vs "
            f"{c2}x{h2}x{w2}"
        )

    has_y = [k for k in ("y_train", "y_test") if k in raw]
    f_train = f_test = None
    names: list[str] = []
    if len(has_y) == 1:
        other = "y_test" if has_y[0] == "y_train" else "y_train"
        raise DataError(f"{p} has {has_y[0]} but no {other}; give both or neither")
    if has_y:
        f_train = _to_factors(raw["y_train"], "y_train", len(x_train))  # (N_train, F)
        f_test = _to_factors(raw["y_test"], "y_test", len(x_test))  # (N_test, F)
        if f_train.shape[1] != f_test.shape[1]:
            raise DataError(
                f"y_train has {f_train.shape[1]} columns but y_test has {f_test.shape[1]}"
            )
        names = ["y"] if f_train.shape[1] == 1 else [f"y{i}" for i in range(f_train.shape[1])]

    generative = [k for k in ("factors_train", "factors_test") if k in raw]
    if has_y and generative:
        raise DataError(f"{p} has both y_* and factors_*; give one of them")
    if len(generative) == 1:
        other = "factors_test" if generative[0] == "factors_train" else "factors_train"
        raise DataError(f"{p} has {generative[0]} but no {other}; give both or neither")
    discrete: list[bool] = []
    if generative:
        f_train = _to_factors(raw["factors_train"], "factors_train", len(x_train))
        f_test = _to_factors(raw["factors_test"], "factors_test", len(x_test))
        if f_train.shape[1] != f_test.shape[1]:
            raise DataError(f"factors_train has {f_train.shape[1]} columns but factors_test "
                            f"has {f_test.shape[1]}")
        names = [f"factor{i}" for i in range(f_train.shape[1])]
        if "factor_names" in raw:
            given = [str(v) for v in np.asarray(raw["factor_names"]).reshape(-1)]
            if len(given) != f_train.shape[1]:
                raise DataError(f"factor_names has {len(given)} entries for "
                                f"{f_train.shape[1]} factors")
            names = given
        both = np.concatenate([f_train, f_test])
        discrete = [len(np.unique(both[:, i])) <= MAX_DISCRETE_VALUES
                    for i in range(both.shape[1])]

    return {"x_train": x_train, "x_test": x_test, "f_train": f_train, "f_test": f_test,
            "names": names, "dtype": dtype, "generative": bool(generative),
            "discrete": discrete}


class NpzData(DatasetConfig):
    """A user file with ``x_train`` and ``x_test`` (uint8 or float in [0, 1])."""

    user_file_fields: ClassVar[tuple[str, ...]] = ("path",)
    examples: ClassVar[tuple[dict[str, Any], ...]] = ()  # needs a user's file

    name: Literal["npz"] = "npz"
    binarize: Binarize = Field(default="none", description=BINARIZE_HELP)
    path: str = Field(min_length=1, description="path of the .npz file on the worker")


@DATASETS.register(NpzData)
def load_npz(spec: NpzData) -> DataBundle:
    return read_npz(spec.path)
