"""A small LeNet-style classifier for the offline sample-quality distance ``fd_lenet``.

FID (Heusel et al. 2017) needs Inception-v3 weights, which this offline engine does not ship
and which do not suit 28 x 28 digits. Instead vaelab trains a LeNet-style network (LeCun et
al. 1998: two 5x5 conv + pool stages, then fully connected layers; here with 32 and 64
channels, batch norm, dropout 0.3, random shifts of up to 2 pixels and a one-cycle learning
rate, which a 4,000-image training split needs to pass 98%) on the data set's own training
split to predict its ``label`` factor; the Fréchet distance (frechet.py) is taken between its
penultimate-layer features (128-d) of two image sets. The number is *not* comparable with
published FID; it compares models on the same data set.

Training is deterministic (fixed seeds, fixed batch order, one CPU thread while it trains)
and cached as ``lenet-<key>.pt`` (weights and held-out accuracy), ``key`` hashing the training
images, labels and the training settings below. Look-up order: the engine's data folder
``vae_engine/data/lenet/`` (mnist5k's classifier ships there, made by
``scripts/train_lenet.py mnist5k``), then
``$VAELAB_CACHE_DIR`` or ``~/.cache/vaelab``, where a classifier trained on first use is
written. Its test accuracy goes into every summary (``fd_lenet_classifier_accuracy``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

VERSION = 1
EPOCHS = 10
SHIFT = 2  # training augmentation: random translations by up to 2 pixels
BATCH = 64
LR = 2e-3  # peak of the one-cycle schedule
SEED = 0
FEATURES = 128


class LeNet(nn.Module):
    """(B, C, H, W) images -> logits (B, n_classes); ``features`` gives the (B, 128) layer."""

    def __init__(self, channels: int, n_classes: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(32, 64, 5, padding=2), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.AdaptiveAvgPool2d(4),
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 16, FEATURES),
                                nn.ReLU())
        self.head = nn.Linear(FEATURES, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))  # (B, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


SHIPPED = Path(__file__).resolve().parents[1] / "data" / "lenet"


def cache_dir() -> Path:
    return Path(os.environ.get("VAELAB_CACHE_DIR") or Path.home() / ".cache" / "vaelab")


def _key(x: torch.Tensor, y: torch.Tensor) -> str:
    h = hashlib.sha256(f"lenet-v{VERSION}-{EPOCHS}-{BATCH}-{LR}-{SEED}-{SHIFT}".encode())
    h.update(x.detach().cpu().float().contiguous().numpy().tobytes())
    h.update(y.detach().cpu().long().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by its own random (dy, dx) in [-SHIFT, SHIFT]^2, zero-filled."""
    b, c, h, w = x.shape
    d = torch.randint(0, 2 * SHIFT + 1, (2, b), generator=gen)  # (2, B) offsets into the pad
    padded = nn.functional.pad(x, (SHIFT, SHIFT, SHIFT, SHIFT))  # (B, C, H+2S, W+2S)
    rows = (d[0][:, None] + torch.arange(h))[:, None, :, None]  # (B, 1, H, 1)
    cols = (d[1][:, None] + torch.arange(w))[:, None, None, :]  # (B, 1, 1, W)
    bi = torch.arange(b)[:, None, None, None]
    ci = torch.arange(c)[None, :, None, None]
    return padded[bi, ci, rows, cols]  # (B, C, H, W)


def _fit(x: torch.Tensor, y: torch.Tensor, n_classes: int) -> LeNet:
    gen = torch.Generator().manual_seed(SEED)  # batch order and shifts
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same reductions in the same order on every run
    try:
        with torch.random.fork_rng(devices=[]):  # init and dropout; the caller's RNG untouched
            torch.manual_seed(SEED)
            net = LeNet(x.shape[1], n_classes)
            opt = torch.optim.Adam(net.parameters(), lr=LR)
            steps = EPOCHS * math.ceil(len(x) / BATCH)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, LR, total_steps=steps)
            net.train()
            for _ in range(EPOCHS):
                order = torch.randperm(len(x), generator=gen)
                for i in range(0, len(x), BATCH):
                    idx = order[i:i + BATCH]
                    loss = nn.functional.cross_entropy(net(_shift(x[idx], gen)), y[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
    finally:
        torch.set_num_threads(threads)
    return net.eval()


@torch.no_grad()
def accuracy(net: LeNet, x: torch.Tensor, y: torch.Tensor) -> float:
    pred = torch.cat([net(xb).argmax(1) for xb in x.split(500)])
    return float((pred == y).float().mean())


def lenet_for(
    x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
) -> tuple[LeNet, float]:
    """The cached classifier for this training split (trained on first use) and its accuracy
    on the test split. x (N, C, H, W) in [0, 1] on the CPU; y (N,) integer labels."""
    x_train, x_test = x_train.detach().cpu().float(), x_test.detach().cpu().float()
    y_train, y_test = y_train.detach().cpu().long(), y_test.detach().cpu().long()
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    name = f"lenet-{_key(x_train, y_train)}.pt"
    path = cache_dir() / name
    net = LeNet(x_train.shape[1], n_classes)
    for found in (SHIPPED / name, path):
        if found.is_file():
            state = torch.load(found, weights_only=True)
            net.load_state_dict(state["weights"])
            return net.eval(), float(state["test_accuracy"])
    log.info("training the fd_lenet classifier on %d images (cached at %s)", len(x_train), path)
    net = _fit(x_train, y_train, n_classes)
    acc = accuracy(net, x_test, y_test)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"weights": net.state_dict(), "test_accuracy": acc}, tmp)
    tmp.replace(path)  # atomic: concurrent workers never read a half-written file
    return net, acc
