"""Latent traversals and on-demand samples from a checkpoint."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from vae_engine import load_checkpoint, train
from vae_engine.checkpoint import LoadedCheckpoint
from vae_engine.data import load_dataset
from vae_engine.errors import VaelabError
from vae_engine.likelihoods import build_likelihood
from vae_engine.models import build_model
from vae_engine.spec import parse_spec
from vae_engine.traversal import (
    default_values,
    fresh_samples,
    posterior_mean_variance,
    select_units,
    traversable_units,
    traversal_grid,
    traversal_png,
)

SPEC = {"dataset": {"name": "digits"}, "model": {"arch": "mlp", "latent_dim": 4, "hidden": [32]},
        "train": {"epochs": 1}, "eval": {"iwae_k": 4, "max_examples": 32}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from vae_engine.io import LocalArtifacts

    res = train(SPEC, None, LocalArtifacts(tmp_path_factory.mktemp("traversal")))
    x_test = load_dataset(parse_spec(SPEC).dataset).x_test
    return load_checkpoint(res.last_checkpoint), res.summary, x_test


def untrained(model: dict) -> LoadedCheckpoint:
    spec = parse_spec({**SPEC, "model": model})
    torch.manual_seed(0)
    lik = build_likelihood(spec.likelihood)
    net = build_model(spec.model, (1, 8, 8), lik.params_per_dim).eval()
    return LoadedCheckpoint(net, lik.eval(), spec, 0, {"data_shape": [1, 8, 8]})


def rows_of(grid: torch.Tensor, n_values: int) -> torch.Tensor:
    return grid.reshape(-1, n_values, *grid.shape[1:])  # (R, V, C, H, W)


# --------------------------------------------------------------------------- flat models


def test_grid_shape_and_row_layout(trained):
    ck, _, x = trained
    grid = traversal_grid(ck, x[:1], units=[2, 0])
    assert grid.shape == (2 * 9, 1, 8, 8)
    assert grid.min() >= 0 and grid.max() <= 1
    # row r is unit units[r] set to each value, every other unit at the posterior mean
    mu = ck.model.encode(x[:1])[0]  # (1, 4)
    z = mu.repeat(9, 1)
    z[:, 0] = default_values()
    expected = ck.likelihood.mean(ck.model.decode(z))
    torch.testing.assert_close(rows_of(grid, 9)[1], expected)


def test_rows_are_independent_and_deterministic(trained):
    ck, _, x = trained
    values = torch.tensor([-2.0, 0.0, 2.0])
    both = traversal_grid(ck, x[:1], units=[1, 3], values=values)
    alone = traversal_grid(ck, x[:1], units=[3], values=values)
    # equal up to float rounding: a different batch size may take another matmul kernel
    torch.testing.assert_close(rows_of(both, 3)[1], alone[:3])
    torch.testing.assert_close(traversal_grid(ck, x[:1], units=[1, 3], values=values), both,
                               rtol=0, atol=0)


def test_a_unit_the_decoder_ignores_changes_nothing_along_its_row():
    ck = untrained({"arch": "mlp", "latent_dim": 4, "hidden": [32]})
    with torch.no_grad():
        ck.model.decoder[0].weight[:, 2] = 0.0  # the decoder no longer reads unit 2
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    rows = rows_of(traversal_grid(ck, x, units=[0, 1, 2, 3]), 9)  # (4, 9, 1, 8, 8)
    spread = (rows - rows[:, :1]).abs().amax(dim=(1, 2, 3, 4))  # (4,) change along each row
    assert spread[2] == 0
    assert (spread[[0, 1, 3]] > 1e-4).all()


def test_units_from_scores_with_the_au_threshold(trained):
    ck, summary, x = trained
    # the spec's eval.au_threshold (0.01) decides which units are active, most active first
    grid = traversal_grid(ck, x[:1], unit_scores=[0.2, 0.001, 0.5, 0.0])
    torch.testing.assert_close(grid, traversal_grid(ck, x[:1], units=[2, 0]), rtol=0, atol=0)
    grid = traversal_grid(ck, x[:1], unit_scores=[0.2, 0.001, 0.5, 0.0], max_units=1)
    assert grid.shape[0] == 9
    # the stored summary's A_u (after one epoch possibly all below the threshold: the
    # top-scoring units are traversed anyway)
    scores = summary["active_units_variance"]
    grid = traversal_grid(ck, x[:1], unit_scores=scores, max_units=2)
    top = sorted(range(4), key=lambda u: (-scores[u], u))
    active = [u for u in top if scores[u] > 0.01] or top
    torch.testing.assert_close(grid, traversal_grid(ck, x[:1], units=active[:2]), rtol=0,
                               atol=0)


def test_default_units_follow_the_examples_kl(trained):
    ck, _, x = trained
    grid = traversal_grid(ck, x[:1], max_units=4)
    assert grid.shape == (4 * 9, 1, 8, 8)


def test_posterior_mean_variance_matches_evaluate(trained):
    ck, _, x = trained
    var = posterior_mean_variance(ck, x[:64], batch_size=20)
    mu = ck.model.encode(x[:64])[0]
    torch.testing.assert_close(var, mu.var(dim=0, correction=1))
    with pytest.raises(VaelabError, match="2 examples"):
        posterior_mean_variance(ck, x[:1])


def test_select_units():
    assert select_units([0.1, 3.0, 0.0, 3.0, 2.0], max_units=3) == [1, 3, 4]
    assert select_units([0.1, 3.0, 0.0, 0.005], threshold=0.01) == [1, 0]
    assert select_units([0.001, 0.002], threshold=0.01) == [1, 0]  # none active: top anyway


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"units": [4]}, "out of range"),
    ({"units": [0, 0]}, "repeats"),
    ({"units": []}, "at least one"),
    ({"units": [0, 1, 2], "max_units": 2}, "max_units"),
    ({"values": []}, "values"),
    ({"values": [0.0, float("nan")]}, "values"),
    ({"unit_scores": [1.0, 2.0]}, "unit_scores"),
])
def test_bad_arguments(trained, kwargs, match):
    ck, _, x = trained
    with pytest.raises(VaelabError, match=match):
        traversal_grid(ck, x[:1], **kwargs)


def test_x_must_be_one_example_of_the_data_shape(trained):
    ck, _, x = trained
    assert traversal_grid(ck, x[0], units=[0]).shape == (9, 1, 8, 8)  # (C, H, W) is accepted
    with pytest.raises(VaelabError, match="one example"):
        traversal_grid(ck, x[:2], units=[0])
    with pytest.raises(VaelabError, match="one example"):
        traversal_grid(ck, torch.rand(1, 1, 28, 28), units=[0])


def test_traversal_png(trained):
    ck, _, x = trained
    png = traversal_png(ck, x[:1], units=[0, 1], values=[-1.0, 0.0, 1.0], scale=1)
    img = Image.open(io.BytesIO(png))
    assert img.size == (3 * 10 + 2, 2 * 10 + 2)  # 8 px images with 2 px padding


def test_conv_model():
    ck = untrained({"arch": "conv", "latent_dim": 3, "channels": [4], "hidden": 16})
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert traversal_grid(ck, x, units=[0, 2], values=[-1.0, 1.0]).shape == (4, 1, 8, 8)


# --------------------------------------------------------------------------- hierarchical


def test_hierarchical_traverses_the_top_group_only():
    ck = untrained({"arch": "hierarchical", "channels": 4, "latent_channels": 2,
                    "groups_per_scale": [1, 1]})
    n_top = traversable_units(ck)
    assert n_top == ck.model.group_sizes[0] == 2 < ck.model.latent_dim
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    grid = traversal_grid(ck, x)
    assert grid.shape == (n_top * 9, 1, 8, 8)
    rows = rows_of(grid, 9)
    assert ((rows - rows[:, :1]).abs().amax(dim=(1, 2, 3, 4)) > 0).all()
    torch.testing.assert_close(traversal_grid(ck, x), grid, rtol=0, atol=0)
    with pytest.raises(VaelabError, match="top latent group"):
        traversal_grid(ck, x, units=[n_top])
    # summary-length scores (every group) are cut to the top group
    scores = [0.0, 1.0] + [5.0] * (ck.model.latent_dim - 2)
    torch.testing.assert_close(traversal_grid(ck, x, unit_scores=scores),
                               traversal_grid(ck, x, units=[1]))


def test_hierarchical_lower_groups_follow_the_prior_mean():
    ck = untrained({"arch": "hierarchical", "channels": 4, "latent_channels": 2,
                    "groups_per_scale": [1, 1]})
    model = ck.model
    with torch.no_grad():  # make the conditional prior of the lower group non-trivial
        model.prior_nets[1].weight.normal_(0, 0.5)
        model.prior_nets[1].bias.normal_(0, 0.5)
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    grid = traversal_grid(ck, x, units=[0], values=[1.5])
    top = model.encode(x)[0][:, : model.group_sizes[0]].clone()
    top[0, 0] = 1.5
    z0 = top.reshape(1, model.lc, *model.scale_sizes[0])
    mu_p = model.top_down(1, zs=[z0, torch.zeros(1, model.lc, *model.scale_sizes[1])])[1][1][3]
    expected = ck.likelihood.mean(model.top_down(1, zs=[z0, mu_p])[0])
    torch.testing.assert_close(grid, expected)


# --------------------------------------------------------------------------- fresh samples


def test_fresh_samples(trained):
    ck, _, _ = trained
    png = fresh_samples(ck, 6, temperature=0.7, seed=3, scale=1)
    img = Image.open(io.BytesIO(png))
    assert img.size == (3 * 10 + 2, 2 * 10 + 2)  # ceil(sqrt(6)) = 3 columns, 2 rows
    assert fresh_samples(ck, 6, temperature=0.7, seed=3, scale=1) == png
    assert fresh_samples(ck, 6, temperature=0.7, seed=4, scale=1) != png


@pytest.mark.parametrize(("n", "temperature", "seed", "match"), [
    (0, 1.0, 0, "n must"),
    (5000, 1.0, 0, "n must"),
    (4, -1.0, 0, "temperature"),
    (4, float("inf"), 0, "temperature"),
    (4, 1.0, -1, "seed"),
])
def test_fresh_samples_rejects_bad_input(trained, n, temperature, seed, match):
    with pytest.raises(VaelabError, match=match):
        fresh_samples(trained[0], n, temperature, seed)
