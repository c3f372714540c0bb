"""Request and response bodies of the HTTP API (pydantic), separate from the SQL models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.db.models import Job

Tag = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[\w.:/=+-]+$")]


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device: Literal["auto", "cuda", "cpu"] = Field(
        default="auto", description="cuda → the gpu queue, cpu → the cpu queue."
    )


class JobCreate(BaseModel):
    """A TrainSpec (``spec``, see ``GET /api/v1/schemes``) plus scheduling fields."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "spec": {"dataset": {"name": "digits"},
                     "model": {"arch": "mlp", "latent_dim": 4, "hidden": [32]},
                     "train": {"epochs": 2}},
            "priority": 5, "tags": ["demo"], "resources": {"device": "cpu"},
        }]},
    )
    spec: dict[str, Any] = Field(description="A TrainSpec; every bad field is reported.")
    priority: int = Field(default=0, ge=0, le=9, description="0..9, 9 runs first.")
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    resources: Resources = Field(default_factory=Resources)


class Progress(BaseModel):
    step: int
    total_steps: int | None
    fraction: float | None
    resume_step: int | None = Field(description="Where the current attempt resumed from.")
    eta_seconds: float | None


class MetricPoint(BaseModel):
    step: int
    value: float | None


class JobSummary(BaseModel):
    id: uuid.UUID
    name: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    owner: str
    priority: int
    tags: list[str]
    device: str
    queue: str
    spec_hash: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    cancel_requested: bool
    progress: Progress
    error: str | None
    sweep_id: uuid.UUID | None = Field(default=None, description="The sweep it is a point of.")
    sweep_params: dict[str, Any] | None = Field(
        default=None, description="The point's {dotted.path: value} in its sweep.")
    dataset: str | None = Field(default=None, description="spec dataset.name")
    arch: str | None = Field(default=None, description="spec model.arch")
    likelihood: str | None = Field(default=None, description="spec likelihood.kind")
    kl: str | None = Field(default=None, description="spec kl.schedule.kind")
    spec: dict[str, Any] | None = Field(default=None, description="With ?with_spec=true.")


class JobDetail(JobSummary):
    spec: dict[str, Any]
    heartbeat_at: datetime | None
    worker: str | None
    latest_metrics: dict[str, MetricPoint]
    summary: dict[str, Any] | None


class JobList(BaseModel):
    items: list[JobSummary]
    total: int
    limit: int
    offset: int


class Series(BaseModel):
    key: str
    steps: list[int]
    values: list[float | None]
    points_in_range: int = Field(description="Stored points in the step range.")
    downsampled: bool


class MetricsOut(BaseModel):
    job_id: uuid.UUID
    max_points: int
    series: list[Series]


class FieldError(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    detail: list[FieldError] | str


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt


def progress_of(job: Job, now: datetime | None = None) -> Progress:
    now = now or datetime.now(UTC)
    total, step = job.total_steps, job.step or 0
    fraction = min(1.0, step / total) if total else None
    eta = None
    started, resumed = aware(job.attempt_started_at), job.resume_step or 0
    if job.status == "running" and total and started and step > resumed:
        elapsed = (now - started).total_seconds()
        if elapsed > 0:
            eta = max(0.0, (total - step) * elapsed / (step - resumed))
    elif job.status == "succeeded":
        eta = 0.0
    return Progress(step=step, total_steps=total, fraction=fraction, resume_step=job.resume_step,
                    eta_seconds=eta)


def _common(job: Job) -> dict[str, Any]:
    return dict(
        id=job.id, name=job.name, status=job.status, owner=job.owner, priority=job.priority,
        tags=job.tags, device=job.device, queue=job.queue, spec_hash=job.spec_hash,
        created_at=aware(job.created_at), updated_at=aware(job.updated_at),
        started_at=aware(job.started_at), finished_at=aware(job.finished_at),
        attempts=job.attempts, cancel_requested=job.cancel_requested,
        progress=progress_of(job), error=job.error, sweep_id=job.sweep_id,
        sweep_params=job.sweep_params, **_spec_labels(job.spec or {}),
    )


def _spec_labels(spec: dict[str, Any]) -> dict[str, str | None]:
    """dataset, arch, likelihood, kl of a spec (the job list's filter columns)."""
    def at(*path: str) -> str | None:
        node: Any = spec
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        return node if isinstance(node, str) else None

    return dict(dataset=at("dataset", "name"), arch=at("model", "arch"),
                likelihood=at("likelihood", "kind"), kl=at("kl", "schedule", "kind"))


def job_summary(job: Job, with_spec: bool = False) -> JobSummary:
    return JobSummary(**_common(job), spec=job.spec if with_spec else None)


def job_detail(job: Job) -> JobDetail:
    return JobDetail(
        **_common(job), spec=job.spec, heartbeat_at=aware(job.heartbeat_at), worker=job.worker,
        latest_metrics={k: MetricPoint(**v) for k, v in (job.latest_metrics or {}).items()},
        summary=job.summary,
    )


# ------------------------------------------------------------------ results of a job


class ActiveUnits(BaseModel):
    count: int | None
    values: list[float | None] | None = Field(description="A_u = Cov_x(E_q[z_u]) per unit.")
    threshold: float | None


class MutualInformation(BaseModel):
    value: float | None
    batch_size: int | None = Field(description="B of the minibatch estimator: I <= log B.")


class TrajectoryPoint(BaseModel):
    step: int
    rate: float | None
    distortion: float | None
    elbo: float | None = None


class RateDistortionOut(BaseModel):
    """A job's evaluation summary (ENGINE_SPEC §4) at one step, and its trajectory."""

    job_id: uuid.UUID
    status: str
    step: int = Field(description="The step of this evaluation.")
    final: bool = Field(description="True for the evaluation at the end of training.")
    evaluated_steps: list[int]
    rate: float | None
    distortion: float | None
    elbo: float | None
    iwae: float | None
    iwae_k: int | None
    bits_per_dim: float | None
    active_units: ActiveUnits
    mutual_information: MutualInformation
    marginal_kl: float | None
    kl_per_unit: list[float | None] | None
    kl_per_group: list[float | None] | None
    beta_effective: float | None
    scheme_state: dict[str, Any] | None
    trajectory: list[TrajectoryPoint] = Field(
        description="(step, R, D, ELBO) of every test-split evaluation.")
    training_trajectory: list[TrajectoryPoint] = Field(
        description="(step, R, D) of the training batches as logged, downsampled.")
    summary: dict[str, Any] = Field(description="The evaluation summary as stored.")


class ArtifactOut(BaseModel):
    kind: str
    step: int
    path: str = Field(description="Relative to the job's folder; GET …/artifacts/{path}.")
    bytes: int
    sha256: str
    created_at: datetime
    url: str


class ArtifactList(BaseModel):
    job_id: uuid.UUID
    items: list[ArtifactOut]
    total_bytes: int


class SamplesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(default=64, ge=1, le=1024)
    temperature: float = Field(default=1.0, ge=0, le=100)
    seed: int | None = Field(default=None, ge=0, lt=2**63)
    step: int | None = Field(default=None, ge=0, description="Checkpoint step; latest if none.")


# ------------------------------------------------------------------ sweeps


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
