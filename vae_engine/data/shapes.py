"""A procedurally generated dSprites-like dataset with known generative factors.

Modelled on dSprites (Matthey, Higgins, Hassabis & Lerchner 2017, github.com/deepmind/
dsprites-dataset): binary images of one white shape on black, with five independent factors

====  ===========  =============================================================
 col   name         values
====  ===========  =============================================================
  0    shape        0 = square, 1 = ellipse, 2 = heart
  1    scale        6 values linspace(0.5, 1)
  2    orientation  40 values k * 2*pi/40, k = 0..39 (radians)
  3    pos_x        32 values linspace(0, 1) (left -> right)
  4    pos_y        32 values linspace(0, 1) (top -> bottom)
====  ===========  =============================================================

Differences from dSprites: the factor combinations are *sampled* (each factor uniformly and
independently, with ``spec.seed``) instead of enumerating all 737,280 of them, and the 40
orientations exclude 2*pi (dSprites includes both 0 and 2*pi, which draw the same image).
Like dSprites, the square and the ellipse are rotationally symmetric (by pi/2 and pi), so
orientation is only identifiable modulo that symmetry for them.

Rendering is vectorised over a batch: pixel-centre coordinates in [-1, 1] are translated to
the shape centre, rotated by -orientation and divided by the half size ``0.3 * scale``,
giving shape coordinates (p, q) in which the masks are
square ``max(|p|, |q|) <= 1``, ellipse ``p^2 + (q / 0.5)^2 <= 1`` and heart
``(x^2 + y^2 - 1)^3 - x^2 y^3 <= 0`` (the implicit heart curve, MathWorld "Heart Curve")
with ``x = 1.15 p``, ``y = 0.118 - 1.15 q`` (upright and centred). Centres span
[-0.55, 0.55], so every shape stays inside the frame at every scale and orientation.

Determinism: factor indices come from ``numpy.random.default_rng([seed, split])`` (train and
test have separate streams, so the test set does not depend on ``n_train``); cos/sin are
taken from 40 tabulated values; the per-pixel work is then only float32 +, -, *, abs, max
and comparisons (and / 0.5), which IEEE 754 rounds exactly, so the bytes are reproducible.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from vae_engine.data.base import BINARIZE_HELP, DATASETS, Binarize, DataBundle, DatasetConfig

if TYPE_CHECKING:
    import torch


FACTOR_NAMES = ["shape", "scale", "orientation", "pos_x", "pos_y"]
SHAPE_NAMES = ["square", "ellipse", "heart"]
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.arange(40) * (2 * math.pi / 40)
# cos/sin via Python's libm (correctly rounded in practice), not numpy's SIMD variants
COS_TABLE = np.array([math.cos(a) for a in ORIENTATIONS], dtype=np.float32)
SIN_TABLE = np.array([math.sin(a) for a in ORIENTATIONS], dtype=np.float32)
POSITIONS = np.linspace(0.0, 1.0, 32)
N_VALUES = (len(SHAPE_NAMES), len(SCALES), len(ORIENTATIONS), len(POSITIONS), len(POSITIONS))

HALF_SIZE = 0.3  # half side of the square at scale 1, in [-1, 1] image coordinates
CENTRE_RANGE = 0.55  # centres span [-0.55, 0.55]; 0.55 + 0.3 * sqrt(2) < 1
ELLIPSE_ASPECT = 0.5  # minor / major axis
HEART_ZOOM, HEART_SHIFT = 1.15, 0.118  # fit the heart curve (|x| <= 1.14, -1 <= y <= 1.24)
CHUNK = 256  # images rendered at once: ~4 MB temporaries at 64 px stay in cache


def sample_factors(n: int, seed: int, split: int) -> torch.Tensor:
    """(n, 5) float32 factor values drawn uniformly and independently per factor."""
    rng = np.random.default_rng([seed, split])
    # drawn row by row (C order), so a smaller n gives a prefix of the same rows
    return _values(rng.integers(0, np.array(N_VALUES), size=(n, len(N_VALUES))))


def fixed_factor_batch(
    k: int, n: int, rng: np.random.Generator, size: int = 64, value_index: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of n images sharing factor k (FactorVAE and beta-VAE scores): the other
    factors drawn uniformly and independently, factor k set to its value number
    ``value_index`` (random when None). Returns (factors (n, 5), images (n, 1, size, size))."""
    idx = rng.integers(0, np.array(N_VALUES), size=(n, len(N_VALUES)))  # (n, 5)
    idx[:, k] = rng.integers(N_VALUES[k]) if value_index is None else value_index
    factors = _values(idx)
    return factors, render_shapes(factors, size)


class ShapesSampler:
    """Draws factor values and renders them: the interface the intervention-based scores use
    (vae_engine.evaluate.intervention)."""

    discrete = (True, True, True, True, True)
    n_factors = len(N_VALUES)

    def __init__(self, size: int = 64):
        self.size = size

    def draw(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        return _values(rng.integers(0, np.array(N_VALUES), size=(n, len(N_VALUES))))

    def render(self, factors: torch.Tensor) -> torch.Tensor:
        return render_shapes(factors, self.size)


def _values(idx: np.ndarray) -> torch.Tensor:
    """(n, 5) value indices -> (n, 5) float32 factor values."""
    import torch  # not at module level: the spec imports this module

    values = np.stack(
        [idx[:, 0].astype(np.float64), SCALES[idx[:, 1]], ORIENTATIONS[idx[:, 2]],
         POSITIONS[idx[:, 3]], POSITIONS[idx[:, 4]]],
        axis=1,
    )
    return torch.from_numpy(values.astype(np.float32))


def _mask(shape_id: int, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Inside-test in shape coordinates; p, q (B, H, W) float32 -> bool (B, H, W)."""
    if shape_id == 0:
        return np.maximum(np.abs(p), np.abs(q)) <= 1.0
    if shape_id == 1:
        qa = q / ELLIPSE_ASPECT
        return p * p + qa * qa <= 1.0
    x = p * HEART_ZOOM
    y = HEART_SHIFT - q * HEART_ZOOM
    x2 = x * x
    r = x2 + y * y - 1.0
    return r * r * r - x2 * y * y * y <= 0.0


def render_shapes(factors: torch.Tensor, size: int = 64) -> torch.Tensor:
    """Render (N, 5) factor values (columns as FACTOR_NAMES) to (N, 1, size, size) in {0, 1}.

    Orientation snaps to the nearest of the 40 tabulated angles; scale and position are used
    as given. The arithmetic is numpy float32 in chunks of CHUNK images: single-threaded
    elementwise numpy is as fast here as torch and, unlike torch's OpenMP kernels, does not
    slow down by 10x on a busy machine.
    """
    import torch  # not at module level: the spec imports this module

    f = factors.detach().to("cpu", torch.float64).numpy()  # (N, 5)
    n = f.shape[0]
    out = np.zeros((n, 1, size, size), dtype=np.float32)
    coords = ((np.arange(size) + 0.5) * (2.0 / size) - 1.0).astype(np.float32)  # pixel centres
    gy, gx = coords.reshape(1, size, 1), coords.reshape(1, 1, size)  # rows down, columns right

    k = np.round(f[:, 2] / (2 * math.pi / 40)).astype(np.int64) % 40  # (N,) orientation index
    inv_half = (1.0 / (HALF_SIZE * f[:, 1])).astype(np.float32)  # (N,)
    cos_s = COS_TABLE[k] * inv_half  # (N,) rotation / half size
    sin_s = SIN_TABLE[k] * inv_half
    cx = ((f[:, 3] * 2.0 - 1.0) * CENTRE_RANGE).astype(np.float32)  # (N,)
    cy = ((f[:, 4] * 2.0 - 1.0) * CENTRE_RANGE).astype(np.float32)
    shape_id = np.round(f[:, 0]).astype(np.int64)  # (N,)

    for s in range(len(SHAPE_NAMES)):
        rows = np.flatnonzero(shape_id == s)
        for start in range(0, len(rows), CHUNK):
            r = rows[start:start + CHUNK]  # (B,)
            dx = gx - cx[r, None, None]  # (B, 1, W)
            dy = gy - cy[r, None, None]  # (B, H, 1)
            c, sn = cos_s[r, None, None], sin_s[r, None, None]  # (B, 1, 1)
            # Rotating the image by +theta == rotating the sampling grid by -theta. The products
            # are on the small (B, 1, W) / (B, H, 1) arrays; only the sums are full size.
            p = dx * c + dy * sn  # (B, H, W)
            q = dy * c - dx * sn  # (B, H, W)
            out[r, 0] = _mask(s, p, q)
    return torch.from_numpy(out)


class ShapesData(DatasetConfig):
    """A procedurally generated dSprites-like set with known factors, deterministic in seed."""

    paper: ClassVar[str] = (
        "Matthey et al. 2017, dSprites: disentanglement testing sprites dataset (procedural "
        "look-alike)"
    )

    examples: ClassVar[tuple[dict[str, Any], ...]] = (
        {"n_train": 64, "n_test": 16, "size": 64},
        {"n_train": 64, "n_test": 16, "size": 32, "seed": 3},
    )

    name: Literal["shapes"] = "shapes"
    binarize: Binarize = Field(default="none", description=BINARIZE_HELP)
    n_train: int = Field(default=8000, ge=16, le=200_000, description="training images")
    n_test: int = Field(default=1000, ge=16, le=50_000, description="test images")
    size: Literal[32, 64] = Field(default=64, description="image side in pixels")
    seed: int = Field(default=0, ge=0, description="generator seed (factors and images)")

    def side(self) -> int | None:
        return self.size

    def train_examples(self) -> int | None:
        return self.n_train


@DATASETS.register(ShapesData)
def load_shapes(spec: ShapesData) -> DataBundle:
    """dSprites-like shapes: x (n, 1, size, size) binary float32; factors (n, 5)."""
    f_train = sample_factors(spec.n_train, spec.seed, split=0)  # (n_train, 5)
    f_test = sample_factors(spec.n_test, spec.seed, split=1)  # (n_test, 5)
    return DataBundle(
        name="shapes",
        x_train=render_shapes(f_train, spec.size),  # (n_train, 1, size, size)
        x_test=render_shapes(f_test, spec.size),  # (n_test, 1, size, size)
        factors_train=f_train,
        factors_test=f_test,
        factor_names=list(FACTOR_NAMES),
        factors_generative=True,
        factor_discrete=[True] * len(FACTOR_NAMES),
        factor_sampler=ShapesSampler(spec.size),
    )
