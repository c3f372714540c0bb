"""Bodies of sweeps, their frontier, and the compare route."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.api.schemas.jobs import JobSummary, Resources, Tag


class SweepCreate(BaseModel):
    """A base TrainSpec and either a grid (cartesian product over dotted spec paths) or an
    explicit list of overrides: one job per point."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "name": "beta-frontier",
            "base": {"dataset": {"name": "digits"},
                     "model": {"arch": "mlp", "latent_dim": 4, "hidden": [32]},
                     "train": {"epochs": 2}},
            "grid": {"kl.schedule.beta": [0.3, 1, 3], "train.seed": [0, 1]},
            "resources": {"device": "cpu"},
        }]},
    )
    name: str | None = Field(default=None, min_length=1, max_length=200)
    base: dict[str, Any] = Field(description="The TrainSpec every point starts from.")
    grid: dict[str, list[Any]] | None = Field(
        default=None, description="{dotted.path: [values]}; the last key varies fastest.")
    overrides: list[dict[str, Any]] | None = Field(
        default=None, description="[{dotted.path: value}, ...], one point each.")
    priority: int = Field(default=0, ge=0, le=9)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    resources: Resources = Field(default_factory=Resources)


class SweepProgress(BaseModel):
    total: int
    counts: dict[str, int] = Field(description="Jobs per status.")
    finished: int
    fraction: float = Field(description="Optimizer steps done / planned over all jobs "
                            "(finished jobs count as done).")


class SweepSummary(BaseModel):
    id: uuid.UUID
    name: str
    owner: str
    status: Literal["queued", "running", "finished", "cancelled"]
    created_at: datetime
    cancel_requested: bool
    varied: list[str] = Field(description="The dotted paths the points vary.")
    progress: SweepProgress


class SweepJob(BaseModel):
    index: int | None
    params: dict[str, Any]
    job: JobSummary


class SweepDetail(SweepSummary):
    base: dict[str, Any]
    grid: dict[str, Any] | None
    overrides: list[Any] | None
    jobs: list[SweepJob]


class SweepList(BaseModel):
    items: list[SweepSummary]
    total: int
    limit: int
    offset: int


class FrontierOut(BaseModel):
    sweep_id: uuid.UUID
    finished: int
    total: int
    seeds_vary: bool
    points: list[dict[str, Any]] = Field(
        description="Per finished job: job_id, params, rate, distortion, elbo, iwae, "
                    "iwae_k, on_frontier.")
    aggregated: list[dict[str, Any]] | None = Field(
        description="Where seeds vary: per configuration, mean and spread (std/min/max) "
                    "across seeds, on_frontier of the means.")


class CompareOut(BaseModel):
    jobs: list[uuid.UUID]
    keys: list[str]
    steps: list[int] = Field(description="The union of the steps of every series.")
    series: dict[str, dict[str, list[float | None]]] = Field(
        description="job id -> key -> values aligned with steps (null where absent).")
    ts: dict[str, dict[str, list[float | None]]] | None = Field(default=None, description=(
        "Only with `with_ts=true`: job id -> key -> each point's wall time (unix seconds), "
        "aligned with steps (null where absent)."))
