"""A likelihood defined entirely here (config + nn.Module + one registration call) is a
first-class component: it validates in a spec, is in the catalogue, matches its
torch.distributions counterpart, trains, and resumes exactly (its learned parameter
included), and is gone once unregistered.

The built-in likelihoods keep the module in a sibling ``*_nn.py`` only so that the spec
imports without torch; a test (or a notebook) may keep everything in one file.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import pytest
import torch
from pydantic import Field
from torch import nn

from tests.engine.conftest import TINY, assert_resumes_exactly
from vae_engine.catalogue import catalogue
from vae_engine.errors import SpecError
from vae_engine.likelihoods import LIKELIHOODS, Likelihood, build_likelihood
from vae_engine.registry import ComponentConfig
from vae_engine.spec import parse_spec


class LaplaceConfig(ComponentConfig):
    """Laplace decoder: -log p = |x - mu| / b + log 2b per dim (an L1 reconstruction)."""

    paper: ClassVar[str] = "Test-only likelihood (no paper)"

    kind: Literal["laplace"] = "laplace"
    scale: float = Field(default=0.3, gt=0, description="Initial scale b.")
    learned: bool = Field(default=False, description="Train log b with the model.")


class Laplace(Likelihood):
    """params (B, C, H, W) are the location mu; b is fixed or one learned scalar."""

    def __init__(self, spec: LaplaceConfig):
        super().__init__()
        self.log_b = nn.Parameter(torch.tensor(math.log(spec.scale)),
                                  requires_grad=spec.learned)

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        b = self.log_b.exp()
        per_dim = (x - params).abs() / b + math.log(2.0) + self.log_b  # (B, C, H, W)
        return per_dim.flatten(1).sum(1)  # (B,)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params.clamp(0.0, 1.0)

    def reference(self, params: torch.Tensor) -> torch.distributions.Distribution:
        return torch.distributions.Laplace(params, self.log_b.exp())

    def metrics(self) -> dict[str, float]:
        return {"laplace_b": float(self.log_b.detach().exp())}


@pytest.fixture
def registered():
    with LIKELIHOODS.registered(LaplaceConfig, Laplace):
        yield


def test_validates_and_is_in_the_catalogue(registered):
    spec = parse_spec({**TINY, "likelihood": {"kind": "laplace", "scale": 0.5}})
    assert isinstance(spec.likelihood, LaplaceConfig) and spec.likelihood.scale == 0.5
    with pytest.raises(SpecError) as info:
        parse_spec({**TINY, "likelihood": {"kind": "laplace", "scale": 0}})
    assert info.value.errors[0]["field"] == "likelihood.scale"
    entry = next(e for e in catalogue()["likelihoods"] if e["name"] == "laplace")
    assert entry["summary"].startswith("Laplace decoder") and len(entry["parameters"]) == 2


def test_matches_torch_distributions(registered):
    # seed 0, (3, 1, 4, 4), float64: exact up to rounding
    lik = build_likelihood(LaplaceConfig(scale=0.2)).double()
    g = torch.Generator().manual_seed(0)
    mu = torch.rand(3, 1, 4, 4, generator=g, dtype=torch.float64)
    x = torch.rand(3, 1, 4, 4, generator=g, dtype=torch.float64)
    ref = -lik.reference(mu).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(lik.nll(mu, x), ref, rtol=1e-12, atol=0.0)


def test_trains_and_resumes_exactly_with_its_learned_parameter(registered, tmp_path):
    spec = {**TINY, "dataset": {"name": "digits"},
            "likelihood": {"kind": "laplace", "learned": True},
            "train": {**TINY["train"], "max_steps": 6, "checkpoint_every_epochs": 0}}
    points = assert_resumes_exactly(spec, tmp_path, stop_at=4)
    bs = [m["laplace_b"] for _, m in points if "laplace_b" in m]
    assert bs and bs[-1] != 0.3  # the scale was trained (and restored on resume)


def test_gone_once_unregistered():
    with LIKELIHOODS.registered(LaplaceConfig, Laplace):
        assert "laplace" in LIKELIHOODS
    with pytest.raises(SpecError, match="expected tags: 'bernoulli'"):
        parse_spec({**TINY, "likelihood": {"kind": "laplace"}})
    assert "laplace" not in [e["name"] for e in catalogue()["likelihoods"]]
