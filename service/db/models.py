"""Tables: ``jobs``, ``job_tags``, ``metrics``, ``metric_rollups``, ``artifacts``, ``sweeps``,
``evaluations``, ``datasets``, ``users``, ``api_tokens``, ``job_attempts``, ``workers``,
``user_usage`` (SQLAlchemy 2.0 typed mappings).

Created by Alembic migrations only (``migrations/``); ``create_all`` is never called outside
tests. Times are timezone-aware UTC; ``metrics.ts`` is unix seconds (the time the worker's
sink flushed the batch, strictly increasing per job, which the SSE stream uses as its cursor).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(64), index=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    device: Mapped[str] = mapped_column(String(8), default="auto")
    queue: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempt_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # progress: optimizer steps done / planned; resume_step = where this attempt started
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int | None] = mapped_column(Integer)
    resume_step: Mapped[int | None] = mapped_column(Integer)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # the claim token of the worker attempt that owns the job (a fenced lease)
    lease: Mapped[str | None] = mapped_column(String(36))
    worker: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    latest_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # the sweep this job is a point of (migration 0003): its index and {dotted.path: value}
    sweep_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("sweeps.id", name="fk_jobs_sweep_id", ondelete="SET NULL"), index=True
    )
    sweep_index: Mapped[int | None] = mapped_column(Integer)
    sweep_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # migration 0004: the worker's measured timing (worker/eta.py) and the engine's warnings
    timing: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    warnings: Mapped[list[str] | None] = mapped_column(JSON)
    # migration 0010: sha256 of each user file at submit ({"dataset.path": hex})
    input_sha256: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # migration 0009, the dispatcher (service.db.scheduling): a queued job with
    # ``released_to`` set has been sent to that worker's queue and awaits its claim
    released_to: Mapped[str | None] = mapped_column(String(200))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    preempt_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    preemptible: Mapped[bool] = mapped_column(Boolean, default=True)
    preemptions: Mapped[int] = mapped_column(Integer, default=0)

    tag_rows: Mapped[list[JobTag]] = relationship(
        back_populates="job", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def tags(self) -> list[str]:
        return sorted(t.tag for t in self.tag_rows)

    __table_args__ = (Index("ix_jobs_created_at", "created_at"),)


class JobAttempt(Base):
    """One attempt at a job (migration 0007): opened by a claim, closed with the reason it
    ended (:data:`service.db.attempts.ENDED`) in the transaction that changes the job's state.
    ``delivery_tag`` is the broker's tag of the message the attempt ran from."""

    __tablename__ = "job_attempts"

    job_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    lease: Mapped[str] = mapped_column(String(36))
    worker: Mapped[str | None] = mapped_column(String(200))
    delivery_tag: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    start_step: Mapped[int | None] = mapped_column(Integer)
    end_step: Mapped[int | None] = mapped_column(Integer)
    ended: Mapped[str | None] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_job_attempts_lease", "lease"),)


class JobTag(Base):
    __tablename__ = "job_tags"

    job_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)
    job: Mapped[Job] = relationship(back_populates="tag_rows")


class Metric(Base):
    """One scalar. Primary key (job_id, key, step): a replayed point is ignored on insert."""

    __tablename__ = "metrics"

    # no foreign key: the per-row check halves the ingest rate; jobs are never deleted
    job_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    key: Mapped[str] = mapped_column(String(200))
    step: Mapped[int] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Double)  # NULL = non-finite
    ts: Mapped[float] = mapped_column(Double)

    __table_args__ = (
        PrimaryKeyConstraint("job_id", "key", "step", postgresql_include=["value"]),
        Index("ix_metrics_job_ts", "job_id", "ts"),
    )


# bucket widths of the rollup levels, as shifts: bucket = step >> shift (16, 256, 4096 steps)
ROLLUP_SHIFTS = (4, 8, 12)


class MetricRollup(Base):
    """Per (job, key, level, bucket): the min point, the max point, the first NULL (non-finite)
    point, the step extent and the number of points, written by :mod:`service.db.metrics.write`
    (the worker's sink calls it).

    Min/max/first/last merge idempotently. ``n`` is summed, but only over the rows the
    ``metrics`` insert actually wrote (``RETURNING`` of the ``ON CONFLICT DO NOTHING`` insert,
    in the same transaction), so a replayed point, whose insert is skipped, never adds to it.
    Ties: the earliest step holds a bucket's min and its max (as the exact downsampler).
    """

    __tablename__ = "metric_rollups"

    job_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    key: Mapped[str] = mapped_column(String(200))
    level: Mapped[int] = mapped_column(Integer)  # the shift: bucket = step >> level
    bucket: Mapped[int] = mapped_column(Integer)
    min_value: Mapped[float | None] = mapped_column(Double)  # NULL: only NULL values
    min_step: Mapped[int | None] = mapped_column(Integer)
    max_value: Mapped[float | None] = mapped_column(Double)
    max_step: Mapped[int | None] = mapped_column(Integer)
    null_step: Mapped[int | None] = mapped_column(Integer)  # first step whose value is NULL
    first_step: Mapped[int] = mapped_column(Integer)
    last_step: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer)

    __table_args__ = (PrimaryKeyConstraint("job_id", "key", "level", "bucket"),)


class Artifact(Base):
    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    step: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(1000))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("uq_artifacts_job_path", "job_id", "path", unique=True),
        Index("ix_artifacts_job_kind_step", "job_id", "kind", "step"),
    )


class Sweep(Base):
    """A base spec expanded over a grid (or a list of overrides) into one job per point."""

    __tablename__ = "sweeps"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(200), index=True)
    base: Mapped[dict[str, Any]] = mapped_column(JSON)
    grid: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    overrides: Mapped[list[Any] | None] = mapped_column(JSON)
    n_points: Mapped[int] = mapped_column(Integer)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_sweeps_created_at", "created_at"),)


class Evaluation(Base):
    """One test-split evaluation summary of a job (vae_engine.evaluate keys), per step.

    Written by the worker's sink at every evaluation; a replayed evaluation overwrites its row.
    """

    __tablename__ = "evaluations"

    job_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Dataset(Base):
    """An uploaded ``.npz``, validated as the engine reads it, stored under the dataset root
    (migration 0005). ``path`` is relative to the dataset root."""

    __tablename__ = "datasets"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100))
    owner: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    info: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("uq_datasets_name", "name", unique=True),
                      Index("ix_datasets_owner", "owner"))


USER_ROLES = ("admin", "member")


class User(Base):
    """Someone who may call the API (migration 0008). A NULL limit is no limit; the
    scheduler reads ``max_running``, ``max_queued``, ``weight`` and ``max_priority``."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), default="member")
    max_running: Mapped[int | None] = mapped_column(Integer)
    max_queued: Mapped[int | None] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Double, default=1.0)
    max_priority: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class ApiToken(Base):
    """A bearer token: only the sha256 of its secret is kept (migration 0008)."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user: Mapped[str] = mapped_column(
        String(200), ForeignKey("users.name", name="fk_api_tokens_user", ondelete="CASCADE"),
        index=True)
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("uq_api_tokens_hash", "hash", unique=True),)


class Worker(Base):
    """A worker process and its job slots (migration 0009), registered at start-up and kept
    alive by its heartbeat; a silent worker's slots stop counting."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    device_kind: Mapped[str] = mapped_column(String(8))  # cpu | gpu | any (serves both)
    gpu_index: Mapped[int | None] = mapped_column(Integer)
    gpu_name: Mapped[str | None] = mapped_column(String(200))
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    slots: Mapped[int] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UserUsage(Base):
    """Each user's decayed usage in device-seconds as of ``as_of`` (migration 0009): the
    dispatcher decays it by the half-life and adds its running jobs' time at every pass."""

    __tablename__ = "user_usage"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_seconds: Mapped[float] = mapped_column(Double)
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
