"""The NVAE-style hierarchical model: shapes, groups, KL, decode/sample, IWAE log-weights."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vae_engine.errors import SpecError
from vae_engine.models.base import ARCHITECTURES
from vae_engine.models.hierarchical import HierarchicalModel, build_hierarchical
from vae_engine.models.hierarchical_nn import gaussian_kl


def bce(params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(params, x, reduction="none").flatten(1).sum(1)


def model(shape=(1, 8, 8), out=None, **kw):
    torch.manual_seed(0)
    return build_hierarchical(HierarchicalModel(**kw), shape, out or shape[0])


def test_registered():
    assert ARCHITECTURES.get("hierarchical") is build_hierarchical


@pytest.mark.parametrize(
    ("shape", "gps", "scale_sides"),
    [((1, 28, 28), [2, 2], [4, 7]), ((1, 64, 64), [2, 2], [8, 16]), ((1, 8, 8), [3, 1], [1, 2]),
     ((3, 32, 32), [1, 2, 3], [2, 4, 8])],
)
def test_shapes_and_groups(shape, gps, scale_sides):
    m = model(shape, out=2 * shape[0], groups_per_scale=gps, latent_channels=3)
    x = torch.rand(5, *shape)
    out = m(x)
    assert out.params.shape == (5, 2 * shape[0], *shape[1:])
    # groups in top-down order: the smallest scale (i = 0) first, holding gps[-1] groups
    scales = tuple(i for i in range(len(gps)) for _ in range(gps[len(gps) - 1 - i]))
    assert out.group_scales == scales
    assert out.group_sizes == tuple(3 * scale_sides[i] ** 2 for i in scales)
    assert m.latent_dim == sum(out.group_sizes) == out.kl.shape[1] == out.z.shape[1]
    assert out.kl_groups().shape == (5, sum(gps))
    assert (out.kl >= -1e-6).all()


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mq, lq, mp, lp = torch.randn(4, 3, 5, generator=g, dtype=torch.float64)
    want = torch.distributions.kl_divergence(
        torch.distributions.Normal(mq, (0.5 * lq).exp()),
        torch.distributions.Normal(mp, (0.5 * lp).exp()),
    )
    assert torch.allclose(gaussian_kl(mq, lq, mp, lp), want)


def test_decode_reproduces_forward_and_sampling_is_seeded():
    m = model((1, 28, 28))
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        out = m(x, torch.Generator().manual_seed(1))
        assert torch.allclose(m.decode(out.z), out.params, atol=1e-5)
        a = m.sample_prior(4, 0.7, torch.Generator().manual_seed(2))
        b = m.sample_prior(4, 0.7, torch.Generator().manual_seed(2))
        assert torch.equal(a, b) and a.shape == (4, 1, 28, 28)
        mu, logvar = m.encode(x)
        assert mu.shape == logvar.shape == (3, m.latent_dim)
        assert torch.equal(m.encode(x)[0], mu)  # the mean path is deterministic


def _trained_a_little(m, x, steps=30):
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(steps):
        out = m(x)
        loss = (bce(out.params, x) + out.kl.sum(1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def test_training_reduces_the_negative_elbo():
    torch.manual_seed(0)
    m = model((1, 8, 8))
    x = (torch.rand(32, 1, 8, 8) > 0.5).float()
    with torch.no_grad():
        out = m(x)
        before = (bce(out.params, x) + out.kl.sum(1)).mean().item()
    assert _trained_a_little(m, x) < before


def test_log_weights_estimate_the_elbo():
    """Seed 0, 4000 samples for each of 2 examples: mean_k log w equals the analytic-KL ELBO
    (mean over 4000 forward passes) within 0.5 nats, and IWAE_k >= ELBO."""
    torch.manual_seed(0)
    m = model((1, 8, 8))
    x = (torch.rand(16, 1, 8, 8) > 0.5).float()
    _trained_a_little(m, x)
    x = x[:2]
    k = 4000
    with torch.no_grad():
        lw = m.log_weights(x, k, bce, torch.Generator().manual_seed(0))  # (k, B)
        assert lw.shape == (k, 2)
        xr = x.repeat(k, 1, 1, 1)
        out = m(xr, torch.Generator().manual_seed(1))
        elbo = -(bce(out.params, xr) + out.kl.sum(1)).reshape(k, 2).mean(0)
    assert lw.mean(0).tolist() == pytest.approx(elbo.tolist(), abs=0.5)
    iwae = torch.logsumexp(lw, 0) - math.log(k)
    assert (iwae >= lw.mean(0)).all()


def test_too_small_images_are_rejected():
    with pytest.raises(SpecError, match="groups_per_scale"):
        build_hierarchical(HierarchicalModel(groups_per_scale=[1, 1, 1]), (1, 8, 8), 1)
