"""A dataset defined entirely here (config + loader + one registration call) is a
first-class component: it validates in a spec, its declared image size takes part in the
cross-field checks, it is in the catalogue, yields images in [0, 1], trains, resumes exactly,
and is gone once unregistered.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import pytest
import torch
from pydantic import Field

from tests.engine.conftest import TINY, assert_resumes_exactly
from vae_engine.catalogue import catalogue
from vae_engine.data import DATASETS, DataBundle, DatasetConfig, load_dataset
from vae_engine.data.base import BINARIZE_HELP, Binarize
from vae_engine.errors import SpecError
from vae_engine.spec import parse_spec


class StripesData(DatasetConfig):
    """Horizontal or vertical 8x8 stripes at a random phase; factor = orientation."""

    paper: ClassVar[str] = "Test-only data (no paper)"
    image_size: ClassVar[int | None] = 8

    name: Literal["stripes"] = "stripes"
    binarize: Binarize = Field(default="none", description=BINARIZE_HELP)
    n_train: int = Field(default=256, ge=16, description="training images")
    n_test: int = Field(default=64, ge=16, description="test images")
    seed: int = Field(default=0, ge=0, description="generator seed")


def _stripes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    vertical = torch.randint(0, 2, (n,), generator=g)  # (n,)
    phase = torch.randint(0, 4, (n,), generator=g)  # (n,)
    idx = torch.arange(8)
    rows = ((idx[None, :] + phase[:, None]) % 4 < 2).float()  # (n, 8)
    img = torch.where(vertical[:, None, None].bool(), rows[:, None, :].expand(n, 8, 8),
                      rows[:, :, None].expand(n, 8, 8))  # (n, 8, 8)
    return 0.1 + 0.8 * img[:, None], vertical[:, None].float()  # grey levels in [0.1, 0.9]


def load_stripes(spec: StripesData) -> DataBundle:
    x_train, f_train = _stripes(spec.n_train, 2 * spec.seed)
    x_test, f_test = _stripes(spec.n_test, 2 * spec.seed + 1)
    return DataBundle("stripes", x_train, x_test, f_train, f_test, ["vertical"])


@pytest.fixture
def registered():
    with DATASETS.registered(StripesData, load_stripes):
        yield


def _spec(**kw) -> dict:
    return {**TINY, "dataset": {"name": "stripes", **kw}}


def test_validates_and_its_image_size_is_checked(registered):
    spec = parse_spec(_spec(n_train=32))
    assert isinstance(spec.dataset, StripesData) and spec.dataset.side() == 8
    with pytest.raises(SpecError) as info:  # 3 latent scales need images larger than 8x8
        parse_spec({**_spec(), "model": {"arch": "hierarchical", "groups_per_scale": [1, 1, 1]}})
    assert info.value.errors == [{"field": "model.groups_per_scale", "message":
                                  "3 latent scales need images larger than 8x8; use at most 2 "
                                  "scales"}]


def test_in_the_catalogue_and_loads_in_range(registered):
    entry = next(e for e in catalogue()["datasets"] if e["name"] == "stripes")
    assert [p["name"] for p in entry["parameters"]] == ["binarize", "n_train", "n_test", "seed"]
    b = load_dataset(parse_spec(_spec(binarize="static")).dataset)
    assert b.x_train.shape == (256, 1, 8, 8) and b.is_binary
    assert b.x_test.min() >= 0.0 and b.x_test.max() <= 1.0


def test_trains_and_resumes_exactly(registered, tmp_path):
    spec = _spec(binarize="dynamic")
    spec["train"] = {**spec["train"], "max_steps": 6, "checkpoint_every_epochs": 0}
    spec["optim"] = {**spec["optim"], "batch_size": 64}
    assert_resumes_exactly(spec, tmp_path, stop_at=5)


def test_gone_once_unregistered():
    with DATASETS.registered(StripesData, load_stripes):
        parse_spec(_spec())
    with pytest.raises(SpecError, match="expected tags: 'mnist5k'"):
        parse_spec(_spec())
    assert "stripes" not in [e["name"] for e in catalogue()["datasets"]]
