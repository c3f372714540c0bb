"""``GET /api/v1/jobs/{id}/rate-distortion``: a job's evaluation summary at a step (rate,
distortion, ELBO, IWAE, active units, MI, ...) with its evaluated trajectory and the training
trajectory of rate and distortion."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy.orm import Session

from service.api.deps import JobDep, SessionDep
from service.api.params import Step
from service.api.responses import BY_ID
from service.api.schemas import (
    ActiveUnits,
    Disentanglement,
    MutualInformation,
    RateDistortionOut,
    SampleQuality,
    TrajectoryPoint,
)
from service.db.evaluations import summaries_by_step
from service.db.metrics import read_series

router = APIRouter(prefix="/api/v1/jobs", tags=["results"],
                   responses={**BY_ID})


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _flag(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


_DISENTANGLEMENT = ("mig", "sap", "dci_disentanglement", "dci_completeness",
                    "dci_informativeness", "factor_vae_score", "beta_vae_score")


def _disentanglement(s: dict[str, Any]) -> Disentanglement | None:
    if not any(k in s for k in _DISENTANGLEMENT):
        return None
    names = s.get("factor_names")
    return Disentanglement(**{k: _num(s.get(k)) for k in _DISENTANGLEMENT},
                           factor_names=names if isinstance(names, list) else None)


def _sample_quality(s: dict[str, Any]) -> SampleQuality | None:
    if "fd_lenet" not in s:
        return None
    return SampleQuality(fd_lenet=_num(s.get("fd_lenet")),
                         fd_lenet_recon=_num(s.get("fd_lenet_recon")),
                         classifier_accuracy=_num(s.get("fd_lenet_classifier_accuracy")))


def _training_trajectory(session: Session, job_id: uuid.UUID,
                         max_points: int) -> list[TrajectoryPoint]:
    rate = read_series(session, job_id, "rate", None, None, max_points)
    dist = read_series(session, job_id, "distortion", None, None, max_points)
    r = dict(zip(rate.steps, rate.values, strict=True))
    d = dict(zip(dist.steps, dist.values, strict=True))
    return [TrajectoryPoint(step=s, rate=r.get(s), distortion=d.get(s))
            for s in sorted(set(r) | set(d))]


@router.get("/{job_id}/rate-distortion", response_model=RateDistortionOut,
            responses={404: {"description": "No evaluation (at that step) yet."}})
def rate_distortion(
    job: JobDep, session: SessionDep,
    step: Annotated[Step | None, Query(description="An evaluated step; default the "
                                      "latest.")] = None,
    max_points: Annotated[int, Query(ge=2, le=10_000, description="Of the training "
                                     "trajectory.")] = 500,
) -> RateDistortionOut:
    history = summaries_by_step(session, job)
    if not history:
        raise HTTPException(404, f"job {job.id} has no evaluation yet (status {job.status})")
    steps = sorted(history)
    chosen = steps[-1] if step is None else step
    if chosen not in history:
        raise HTTPException(404, f"job {job.id} has no evaluation at step {step}; "
                            f"evaluated steps: {steps}")
    s = history[chosen]
    au_threshold = ((job.spec or {}).get("eval") or {}).get("au_threshold")
    return RateDistortionOut(
        job_id=job.id, status=job.status, step=chosen,
        final=job.status == "succeeded" and chosen == steps[-1], evaluated_steps=steps,
        rate=_num(s.get("rate")), distortion=_num(s.get("distortion")),
        elbo=_num(s.get("elbo")), iwae=_num(s.get("iwae")), iwae_k=_int(s.get("iwae_k")),
        bits_per_dim=_num(s.get("bits_per_dim")),
        active_units=ActiveUnits(count=_int(s.get("active_units")),
                                 values=s.get("active_units_variance"),
                                 threshold=_num(au_threshold)),
        mutual_information=MutualInformation(value=_num(s.get("mutual_information")),
                                             batch_size=_int(s.get("mi_batch_size")),
                                             upper_bound=_num(s.get("mi_upper_bound")),
                                             saturated=_flag(s.get("mi_saturated"))),
        marginal_kl=_num(s.get("marginal_kl")),
        bound=_flag(s.get("bound")),
        bound_reason=s.get("bound_reason") if isinstance(s.get("bound_reason"), str) else None,
        evaluation=s.get("evaluation") if isinstance(s.get("evaluation"), str) else None,
        disentanglement=_disentanglement(s), sample_quality=_sample_quality(s),
        kl_per_unit=s.get("kl_per_unit"),
        kl_per_group=s.get("kl_per_group"), beta_effective=_num(s.get("beta_effective")),
        scheme_state=s.get("scheme_state"),
        trajectory=[TrajectoryPoint(step=k, rate=_num(history[k].get("rate")),
                                    distortion=_num(history[k].get("distortion")),
                                    elbo=_num(history[k].get("elbo"))) for k in steps],
        training_trajectory=_training_trajectory(session, job.id, max_points),
        summary=s,
    )
