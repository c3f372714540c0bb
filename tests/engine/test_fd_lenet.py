"""fd_lenet (ENGINE_SPEC section 7): the Fréchet distance and vaelab's LeNet features.

Uses the classifier shipped for mnist5k (vae_engine/data/lenet/; made by
scripts/train_lenet.py, deterministic): its stored test accuracy must be >= 0.98 and match
a fresh computation on the 1,000 test digits. Noise/blur curves: seed 0, the 1,000 test
digits against themselves degraded.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from vae_engine.data.mnist5k import load_mnist5k
from vae_engine.evaluate.frechet import fd_lenet, frechet_distance
from vae_engine.evaluate.lenet import SHIPPED, LeNet, _fit, _key, accuracy, lenet_for


@pytest.fixture(scope="module")
def mnist():
    b = load_mnist5k()
    return b.x_train, b.factors_train[:, 0].long(), b.x_test, b.factors_test[:, 0].long()


@pytest.fixture(scope="module")
def net(mnist):
    x_tr, y_tr, x_te, y_te = mnist
    assert (SHIPPED / f"lenet-{_key(x_tr, y_tr)}.pt").is_file(), "run scripts/train_lenet.py"
    net, acc = lenet_for(x_tr, y_tr, x_te, y_te)
    assert acc >= 0.98
    assert accuracy(net, x_te, y_te) == pytest.approx(acc, abs=1e-6)
    return net


@pytest.mark.parametrize("n", [2, 5, 16])
def test_frechet_distance_matches_scipy_sqrtm(n):
    g = torch.Generator().manual_seed(n)
    a = torch.randn(300, n, generator=g, dtype=torch.float64)
    b = torch.randn(200, n, generator=g, dtype=torch.float64) @ torch.randn(
        n, n, generator=g, dtype=torch.float64) + 1.0
    s1, s2 = np.cov(a.numpy().T), np.cov(b.numpy().T)
    want = float(((a.mean(0) - b.mean(0)) ** 2).sum()) + np.trace(
        s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-6)
    assert frechet_distance(b, a) == pytest.approx(want, rel=1e-6)


def test_test_split_against_itself_is_zero(net, mnist):
    x = mnist[2]
    assert fd_lenet(net, x, x) == pytest.approx(0.0, abs=1e-6)
    half = fd_lenet(net, x[:500], x[500:])  # two halves of one distribution: small
    assert half < fd_lenet(net, x, (x + 0.3 * torch.randn_like(x)).clamp(0, 1))


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = 4
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).reshape(1, 1, 1, -1)
    pad = torch.nn.functional.pad(x, (r, r, r, r), mode="replicate")
    y = torch.nn.functional.conv2d(pad, k)
    return torch.nn.functional.conv2d(y, k.transpose(2, 3))


def test_distance_rises_with_noise_and_blur(net, mnist):
    x = mnist[2]
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x.shape, generator=g)
    by_noise = [fd_lenet(net, x, (x + s * noise).clamp(0, 1)) for s in (0.05, 0.1, 0.2, 0.4)]
    by_blur = [fd_lenet(net, x, _blur(x, s)) for s in (0.5, 1.0, 1.5, 2.5)]
    assert all(a < b for a, b in zip(by_noise, by_noise[1:], strict=False)), by_noise
    assert all(a < b for a, b in zip(by_blur, by_blur[1:], strict=False)), by_blur


def test_training_is_deterministic_and_cached(tmp_path, monkeypatch):
    """Two trainings on 200 digits (1 epoch) give identical weights; the second call of
    lenet_for loads the file the first wrote."""
    import vae_engine.evaluate.lenet as lenet

    monkeypatch.setattr(lenet, "EPOCHS", 1)
    monkeypatch.setenv("VAELAB_CACHE_DIR", str(tmp_path))
    b = load_mnist5k()
    x, y = b.x_train[:200], b.factors_train[:200, 0].long()
    a1, a2 = _fit(x, y, 10), _fit(x, y, 10)
    for p, q in zip(a1.state_dict().values(), a2.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    n1, acc1 = lenet_for(x, y, b.x_test[:100], b.factors_test[:100, 0].long())
    assert len(list(tmp_path.glob("lenet-*.pt"))) == 1
    n2, acc2 = lenet_for(x, y, b.x_test[:100], b.factors_test[:100, 0].long())
    assert acc1 == acc2 and isinstance(n2, LeNet)
