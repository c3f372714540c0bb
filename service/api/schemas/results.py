"""Bodies of a job's results: the rate-distortion summary, artifacts, samples."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ActiveUnits(BaseModel):
    count: int | None
    values: list[float | None] | None = Field(description="A_u = Cov_x(E_q[z_u]) per unit.")
    threshold: float | None


class MutualInformation(BaseModel):
    value: float | None
    batch_size: int | None = Field(description="N examples of the estimator: I <= log N.")
    upper_bound: float | None = Field(default=None, description="log N, the estimator's ceiling.")
    saturated: bool | None = Field(
        default=None, description="I > 0.95 log N: the true I may be larger and marginal KL "
        "= R - I overstated.")


class Disentanglement(BaseModel):
    """Final-evaluation scores against the data set's generative factors (ENGINE_SPEC §7)."""

    mig: float | None = None
    sap: float | None = None
    dci_disentanglement: float | None = None
    dci_completeness: float | None = None
    dci_informativeness: float | None = None
    factor_vae_score: float | None = None
    beta_vae_score: float | None = None
    factor_names: list[str] | None = None


class SampleQuality(BaseModel):
    fd_lenet: float | None = Field(
        description="Fréchet distance, test images vs prior samples, in vaelab's LeNet "
        "features; not comparable with published FID.")
    fd_lenet_recon: float | None = None
    classifier_accuracy: float | None = None


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
    bound: bool | None = Field(
        default=None, description="Whether elbo/iwae bound a normalised likelihood of the data "
        "as given; bound_reason says why (or why not).")
    bound_reason: str | None = None
    evaluation: str | None = Field(
        default=None, description="final (full IWAE and metrics) or intermediate (cheap).")
    disentanglement: Disentanglement | None = Field(
        default=None, description="Present for data sets with generative factors (shapes).")
    sample_quality: SampleQuality | None = Field(
        default=None, description="fd_lenet, for data sets with a label (mnist5k).")
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
    step: int | None = Field(default=None, ge=0, lt=2**31,
                             description="Checkpoint step; latest if none.")
