"""Bodies of the job routes: submit, list, detail, metrics, and the error shape."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.db.attempts import Ended
from service.db.models import Job, JobAttempt

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
    eta_seconds: float | None = Field(
        description="Seconds left: the measured step time over the steps left plus the "
                    "measured evaluation time over the evaluations left; null while queued "
                    "or before a step time is measured.")
    eta_includes_evals: bool | None = Field(
        default=None, description="False while no evaluation has been timed yet (the ETA "
                                  "then counts the steps only).")


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
        default=None, description="The values this sweep point sets: {dotted.path: value}.")
    dataset: str | None = Field(default=None, description="spec dataset.name")
    arch: str | None = Field(default=None, description="spec model.arch")
    likelihood: str | None = Field(default=None, description="spec likelihood.kind")
    kl: str | None = Field(default=None, description="spec kl.schedule.kind")
    spec: dict[str, Any] | None = Field(default=None, description="With ?with_spec=true.")
    preemptions: int = Field(default=0, description="Times the job was preempted (it then "
                                                    "waited again and resumed exactly).")
    preemptible: bool = Field(default=True, description="False: the dispatcher never "
                                                        "preempts it (an admin's choice).")
    preempt_requested: bool = Field(default=False, description="Asked to checkpoint and "
                                                               "make room.")
    released_to: str | None = Field(default=None, description="Queued: the worker it was "
                                                              "sent to, not yet claimed.")


class Attempt(BaseModel):
    """One attempt at the job, as ``job_attempts`` keeps it."""

    attempt: int = Field(description="1 for the first attempt.")
    worker: str | None
    started_at: datetime
    ended_at: datetime | None = Field(description="Null while the attempt runs.")
    start_step: int | None = Field(description="The step it started (resumed) from.")
    end_step: int | None = Field(description="The job's recorded step when it ended.")
    ended: Ended | None = Field(description="Why it ended; null while it runs.")
    message: str | None = Field(description="The error or reason recorded with its end.")


class JobDetail(JobSummary):
    spec: dict[str, Any]
    heartbeat_at: datetime | None
    worker: str | None
    latest_metrics: dict[str, MetricPoint]
    summary: dict[str, Any] | None
    warnings: list[str] = Field(default_factory=list,
                                description="The engine's warnings about this job's run.")
    storage_bytes: int | None = Field(default=None,
                                      description="Bytes of the files (checkpoints, images) "
                                                  "the job holds.")
    attempts_history: list[Attempt] = Field(
        default_factory=list, description="Every attempt at the job, oldest first, with how "
                                          "each ended.")


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
    ts: list[float | None] | None = Field(default=None, description=(
        "Only with `with_ts=true`: each point's wall time, unix seconds (when the worker's "
        "sink wrote the point's batch: at most VAELAB_METRIC_BATCH_SECONDS after it was "
        "logged). A downsampled bucket's points are stored points with their own stamps."))


class MetricsOut(BaseModel):
    job_id: uuid.UUID
    max_points: int
    series: list[Series]


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt


def progress_of(job: Job, now: datetime | None = None) -> Progress:
    now = now or datetime.now(UTC)
    total, step = job.total_steps, job.step or 0
    fraction = min(1.0, step / total) if total else None
    eta, with_evals = None, None
    timing = job.timing or {}
    if job.status == "running" and timing.get("finish_at") is not None:
        eta = max(0.0, timing["finish_at"] - now.timestamp())
        with_evals = bool(timing.get("eval_measured"))
    elif job.status == "succeeded":
        eta = 0.0
    return Progress(step=step, total_steps=total, fraction=fraction, resume_step=job.resume_step,
                    eta_seconds=eta, eta_includes_evals=with_evals)


def _common(job: Job) -> dict[str, Any]:
    return dict(
        id=job.id, name=job.name, status=job.status, owner=job.owner, priority=job.priority,
        tags=job.tags, device=job.device, queue=job.queue, spec_hash=job.spec_hash,
        created_at=aware(job.created_at), updated_at=aware(job.updated_at),
        started_at=aware(job.started_at), finished_at=aware(job.finished_at),
        attempts=job.attempts, cancel_requested=job.cancel_requested,
        progress=progress_of(job), error=job.error, sweep_id=job.sweep_id,
        sweep_params=job.sweep_params, **_spec_labels(job.spec or {}),
        preemptions=job.preemptions or 0, preemptible=bool(job.preemptible),
        preempt_requested=bool(job.preempt_requested), released_to=job.released_to,
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


def attempt_out(row: JobAttempt) -> Attempt:
    return Attempt(attempt=row.attempt, worker=row.worker, started_at=aware(row.started_at),
                   ended_at=aware(row.ended_at), start_step=row.start_step,
                   end_step=row.end_step, ended=row.ended, message=row.message)


def job_detail(job: Job, storage_bytes: int | None = None,
               history: list[JobAttempt] | None = None) -> JobDetail:
    return JobDetail(storage_bytes=storage_bytes,
        attempts_history=[attempt_out(a) for a in history or []],
        **_common(job), spec=job.spec, heartbeat_at=aware(job.heartbeat_at), worker=job.worker,
        latest_metrics={k: MetricPoint(**v) for k, v in (job.latest_metrics or {}).items()},
        summary=job.summary, warnings=job.warnings or [],
    )
