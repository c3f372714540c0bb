"""A KL scheme defined entirely here (config + implementation + one registration call) is a
first-class component: it validates in a spec, is in the catalogue and the JSON schema,
trains, resumes exactly from a checkpoint, and is gone once unregistered.

Adding a scheme touches no other file (STYLE rule 3); this module is the proof.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pytest
from pydantic import Field

from tests.engine.conftest import TINY, assert_resumes_exactly
from vae_engine.catalogue import catalogue
from vae_engine.errors import SpecError
from vae_engine.kl import SCHEMES, KLScheme
from vae_engine.registry import ComponentConfig
from vae_engine.spec import build_sweep, parse_spec, spec_json_schema


class RateEmaSchedule(ComponentConfig):
    """beta = beta_max / (1 + ema(R) / scale): less weight as the smoothed rate grows."""

    paper: ClassVar[str] = "Test-only controller (no paper)"
    stateful: ClassVar[bool] = True

    kind: Literal["rate_ema"] = "rate_ema"
    beta_max: float = Field(default=1.0, gt=0, description="Weight at zero rate.")
    scale: float = Field(default=5.0, gt=0, description="Rate (nats) that halves the weight.")
    decay: float = Field(default=0.9, ge=0, lt=1, description="EMA factor of the rate.")


class RateEma(KLScheme):
    def __init__(self, spec: RateEmaSchedule, ctx: Any):
        super().__init__(spec, ctx)
        self.ema = 0.0

    def weight(self, step: int) -> float:
        return self.spec.beta_max / (1.0 + self.ema / self.spec.scale)

    def update(self, step: int, stats: dict[str, float]) -> None:
        self.ema = self.spec.decay * self.ema + (1 - self.spec.decay) * stats["rate_term"]

    def state_dict(self) -> dict[str, Any]:
        return {"ema": self.ema}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema = float(state["ema"])


@pytest.fixture
def registered():
    with SCHEMES.registered(RateEmaSchedule, RateEma):
        yield


def _spec(**schedule) -> dict:
    return {**TINY, "kl": {"schedule": {"kind": "rate_ema", **schedule}}}


def test_validates_with_its_own_fields_and_errors(registered):
    spec = parse_spec(_spec(scale=2.0))
    assert isinstance(spec.kl.schedule, RateEmaSchedule) and spec.kl.schedule.scale == 2.0
    with pytest.raises(SpecError) as info:
        parse_spec(_spec(decay=1.0, beta=1.0))
    assert {e["field"] for e in info.value.errors} == {"kl.schedule.decay", "kl.schedule.beta"}


def test_is_in_the_catalogue_and_the_schema(registered):
    entry = next(e for e in catalogue()["schedules"] if e["name"] == "rate_ema")
    assert entry["stateful"] is True and entry["warmup"] is False
    assert entry["summary"].startswith("beta = beta_max / (1 + ema(R) / scale)")
    assert [p["name"] for p in entry["parameters"]] == ["beta_max", "scale", "decay"]
    mapping = spec_json_schema()["$defs"]["KLSpec"]["properties"]["schedule"]["discriminator"]
    assert mapping["mapping"]["rate_ema"] == "#/$defs/RateEmaSchedule"


def test_can_be_swept(registered):
    points = build_sweep({"kl": {"schedule": {"kind": "constant", "beta": 2.0}}},
                         overrides=[{"kl.schedule.kind": "constant"},
                                    {"kl.schedule.kind": "rate_ema", "kl.schedule.scale": 1.0}])
    assert [p["spec"]["kl"]["schedule"] for p in points] == [
        {"kind": "constant", "beta": 2.0}, {"kind": "rate_ema", "beta_max": 1.0, "scale": 1.0,
                                            "decay": 0.9}]


def test_trains_and_resumes_exactly(registered, tmp_path):
    spec = _spec()
    spec["train"] = {**spec["train"], "max_steps": 6, "checkpoint_every_epochs": 0}
    points = assert_resumes_exactly(spec, tmp_path, stop_at=3)
    betas = [m["beta_effective"] for _, m in points if "beta_effective" in m]
    assert betas[0] < 1.0 and betas[-1] < betas[0]  # the controller acted on the rate


def test_unregistering_removes_it_everywhere():
    with SCHEMES.registered(RateEmaSchedule, RateEma):
        parse_spec(_spec())
    with pytest.raises(SpecError) as info:
        parse_spec(_spec())
    assert "does not match any of the expected tags: 'constant'" in info.value.errors[0]["message"]
    assert "rate_ema" not in [e["name"] for e in catalogue()["schedules"]]
    assert "rate_ema" not in str(spec_json_schema())
