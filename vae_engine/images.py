"""Image grids as PNG bytes (Pillow; no torchvision)."""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image


def grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """images (B, C, H, W) in [0, 1] -> uint8 array (rows*H', cols*W', C) with padding."""
    imgs = images.detach().float().clamp(0, 1).cpu()
    b, c, h, w = imgs.shape
    cols = nrow or max(1, math.ceil(math.sqrt(b)))
    rows = math.ceil(b / cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, dtype=np.uint8)
    arr = (imgs.permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).astype(np.uint8)  # (B, H, W, C)
    for i in range(b):
        r, q = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        out[y : y + h, x : x + w] = arr[i]
    return out


def png_bytes(images: torch.Tensor, nrow: int | None = None, scale: int = 1) -> bytes:
    arr = grid(images, nrow)
    img = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def recon_pairs(x: torch.Tensor, recon: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Originals and reconstructions in alternating rows; returns (images, columns)."""
    b = x.shape[0]
    cols = min(b, max(1, math.ceil(math.sqrt(2 * b))))
    b = (b // cols) * cols
    rows = []
    for i in range(0, b, cols):
        rows += [x[i : i + cols], recon[i : i + cols]]
    return torch.cat(rows), cols
