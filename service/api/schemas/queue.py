"""Bodies of the queue routes: ``GET /api/v1/queue``, preemption and the preemptible flag."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from service.api.schemas.jobs import JobSummary


class QueueEntry(BaseModel):
    position: int = Field(description="1-based: running jobs first, then waiting jobs in the "
                                      "order the dispatcher would release them; the place in "
                                      "the whole queue, also when other users' entries are "
                                      "hidden (read scope owner).")
    state: str = Field(description="running | released (sent, awaiting its worker) | waiting")
    reason: str | None = Field(description="Why a waiting job waits ('alice: 2 of 2 running', "
                                           "'no free gpu slot', 'behind 3 jobs of higher "
                                           "priority'); null for running jobs.")
    job: JobSummary


class WorkerOut(BaseModel):
    name: str
    device_kind: str
    gpu_index: int | None
    gpu_name: str | None
    memory_bytes: int | None
    slots: int
    busy: int
    live: bool
    heartbeat_at: datetime
    started_at: datetime


class QueueOut(BaseModel):
    items: list[QueueEntry]
    running: int = Field(description="Running jobs in the whole queue, hidden ones included.")
    waiting: int = Field(description="Released and waiting jobs in the whole queue, hidden "
                                     "ones included.")
    hidden: int = Field(0, description="Entries of other users left out of `items`: under "
                                       "VAELAB_READ_SCOPE=owner a member sees only their own "
                                       "jobs (0 for an admin, and under `lab`).")
    workers: list[WorkerOut]


class PreemptibleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preemptible: bool
