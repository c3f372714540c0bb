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
        progress=progress_of(job), error=job.error,
    )


def job_summary(job: Job) -> JobSummary:
    return JobSummary(**_common(job))


def job_detail(job: Job) -> JobDetail:
    return JobDetail(
        **_common(job), spec=job.spec, heartbeat_at=aware(job.heartbeat_at), worker=job.worker,
        latest_metrics={k: MetricPoint(**v) for k, v in (job.latest_metrics or {}).items()},
        summary=job.summary,
    )
