"""Settings from ``VAELAB_*`` environment variables (pydantic-settings).

With nothing set, everything lives under ``./vaelab-data/``: a SQLite database, the
artifact folder and a server-less Celery broker (kombu's SQLAlchemy transport on its own
SQLite file). ``VAELAB_ENV=production`` refuses those laptop defaults.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VAELAB_", extra="ignore")

    env: Literal["dev", "production"] = "dev"
    data_dir: Path = Field(
        default=Path("vaelab-data"), description="Folder for the embedded defaults."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<data_dir>/vaelab.db"
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker; default sqla+sqlite:///<data_dir>/broker.db (no server)",
    )
    artifact_root: Path | None = Field(
        default=None, description="Checkpoints, sample grids; default <data_dir>/artifacts"
    )
    dataset_root: Path | None = Field(
        default=None,
        description="The only place a spec's npz dataset may be read from; default "
                    "<data_dir>/datasets",
    )
    dataset_max_bytes: int = Field(
        default=2 * 1024**3, ge=1, description="The largest .npz POST /api/v1/datasets takes.")
    max_request_bytes: int = Field(
        default=1024**2, ge=1024,
        description="The largest request body any route but the dataset upload takes; larger "
                    "ones get 413 before they are read (by Content-Length) or as they stream.")
    max_parameters: int = Field(
        default=1_000_000_000, ge=1,
        description="Spec budget: estimated model parameters (encoder + decoder).")
    max_activation_bytes: int = Field(
        default=32 * 1024**3, ge=1,
        description="Spec budget: estimated activation memory of one training batch, and of "
                    "one IWAE pass.")
    max_iwae_elements: int = Field(
        default=4_000_000_000, ge=1,
        description="Spec budget: values decoded by the final IWAE (iwae_k x max_examples x "
                    "data dims).")
    max_logged_points: int = Field(
        default=10_000_000, ge=1,
        description="Spec budget: estimated metric points a job logs (steps / log_every x "
                    "keys).")
    api_url: str = Field(
        default="http://127.0.0.1:8000", description="Where the CLI client finds the API."
    )
    token: str | None = Field(
        default=None, description="The CLI client's API token; overrides the one `vaelab "
                                  "login` stored.",
    )
    read_scope: Literal["lab", "owner"] = Field(
        default="lab", description="Who reads a job, sweep, its metrics and files: `lab` "
                                   "(everyone with a token) or `owner` (its owner and admins; "
                                   "others get 404).",
    )
    stream_token_check_s: float = Field(
        default=2.0, gt=0, description="An open event stream re-checks its token this often "
                                       "and ends (`event: error`, 401) once the token is "
                                       "revoked or expired or its user disabled.",
    )
    visibility_timeout_s: int = Field(
        default=7 * 24 * 3600, ge=60,
        description="Redis redelivers an unacked message after this; > the longest job.",
    )
    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    reaper_stale_after_s: float = Field(
        default=60.0, gt=0, description="A running job silent this long is re-enqueued."
    )
    reaper_interval_s: float = Field(default=15.0, gt=0)
    reaper_enabled: bool = Field(default=True, description="Run the reaper in the API process.")
    dispatch_enabled: bool = Field(
        default=True, description="Run the dispatcher (the only sender to the broker) in the "
                                  "API process.")
    dispatch_interval_s: float = Field(
        default=1.0, gt=0, description="How often the dispatcher releases waiting jobs to free "
                                       "worker slots (and at once after a submit).")
    dispatch_claim_timeout_s: float = Field(
        default=60.0, gt=0, description="A released job that no worker claims within this is "
                                        "released again.")
    fair_share_half_life_h: float = Field(
        default=168.0, gt=0, description="Half-life of the usage that fair share weighs, in "
                                         "hours.")
    fair_share_slot_charge_s: float = Field(
        default=3600.0, ge=0, description="Fair share counts each running job as this much "
                                          "usage while it runs (spreads free slots across "
                                          "users).")
    preempt_for_fair_share: bool = Field(
        default=False, description="Also preempt for a user far under their fair share (not "
                                   "only for a higher priority).")
    max_attempts: int = Field(default=3, ge=1, description="Worker losses before `failed`.")
    gpu_queue: str = "gpu"
    cpu_queue: str = "cpu"
    auto_queue: Literal["gpu", "cpu"] = Field(
        default="gpu", description="Queue for resources.device=auto."
    )
    metric_batch_points: int = Field(default=1000, ge=1)
    metric_batch_seconds: float = Field(default=2.0, gt=0)
    checkpoint_keep_last: int = Field(
        default=3, ge=0,
        description="Checkpoints a job keeps: the last N plus the best-ELBO and the final one "
                    "(0 keeps every one). A spec's train.keep_checkpoints overrides it.")
    cancel_poll_s: float = Field(
        default=1.0, gt=0, description="How often a worker reads the cancel flag."
    )
    worker_threads: int | None = Field(
        default=None, ge=1,
        description="CPU threads of each training process (each worker child sets its own); "
                    "unset: the CPUs it may use (affinity, cgroup quota) that are idle when it "
                    "starts (vae_engine/threads.py).")
    db_connect_timeout_s: float = Field(
        default=5.0, ge=1, description="How long opening a database connection may take "
                                       "(PostgreSQL connect_timeout, at least 2 s).")
    db_ping_timeout_s: float = Field(
        default=2.0, gt=0, description="How long the check of a pooled connection (SELECT 1 "
                                       "at checkout) may wait before the database counts as "
                                       "unavailable; bounds every request on a frozen server.")
    db_statement_timeout_s: float = Field(
        default=30.0, gt=0, description="The longest statement (PostgreSQL statement_timeout; "
                                        "SQLite's busy timeout). A server that stops answering "
                                        "altogether is cut off 2 s after it.")
    db_pool_timeout_s: float = Field(
        default=10.0, gt=0, description="How long a request waits for a free pooled "
                                        "connection.")
    db_retry_after_s: int = Field(
        default=5, ge=1, description="Retry-After of the 503 answered while the database is "
                                     "unavailable.")
    worker_db_grace_s: float = Field(
        default=300.0, ge=0,
        description="How long a worker keeps training through a database outage (buffering "
                    "metrics, retrying its writes) before it gives the attempt up.")

    @model_validator(mode="after")
    def _production_guard(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        if not self.database_url or self.database_url.startswith("sqlite"):
            problems.append("VAELAB_DATABASE_URL must name a server database (not SQLite)")
        if not self.broker_url or self.broker_url.startswith(("sqla+", "filesystem", "memory")):
            problems.append("VAELAB_BROKER_URL must name a broker server (e.g. redis://)")
        if self.artifact_root is None:
            problems.append("VAELAB_ARTIFACT_ROOT must be set (a shared volume)")
        if self.database_url and "postgres:postgres@" in self.database_url:
            problems.append("VAELAB_DATABASE_URL uses the default postgres password")
        if problems:
            raise ValueError("refusing insecure defaults in production: " + "; ".join(problems))
        return self

    # ---- resolved values
    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'vaelab.db').resolve()}"

    @property
    def broker(self) -> str:
        if self.broker_url:
            return self.broker_url
        return f"sqla+sqlite:///{(self.data_dir / 'broker.db').resolve()}"

    @property
    def artifacts(self) -> Path:
        return (self.artifact_root or self.data_dir / "artifacts").resolve()

    @property
    def datasets(self) -> Path:
        return (self.dataset_root or self.data_dir / "datasets").resolve()

    @property
    def admin_token_file(self) -> Path:
        """Where the embedded default writes the first admin's token (mode 0600)."""
        return (self.data_dir / "admin.token").resolve()

    @property
    def embedded_broker(self) -> bool:
        return self.broker.startswith("sqla+")

    def queue_for(self, device: str) -> str:
        if device == "cuda":
            return self.gpu_queue
        if device == "cpu":
            return self.cpu_queue
        return self.gpu_queue if self.auto_queue == "gpu" else self.cpu_queue

    def ensure_dirs(self) -> None:
        if not self.database_url or not self.broker_url:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        self.artifacts.mkdir(parents=True, exist_ok=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()
