"""Results of one job: the rate-distortion summary, checkpoints, sample grids, artifacts.

Reading is plain SQL and files. Traversals and fresh samples need torch: they run in the
(sync) handler's worker thread, never on the event loop, and at most ``TORCH_SLOTS`` at once
in this process (a request that cannot get a slot within ``SLOT_WAIT_S`` gets 503). torch and
the engine's model code are imported there, lazily: importing this module imports no torch.

Files are served only if recorded in ``artifacts`` and, resolved, inside the artifact root
(:mod:`service.artifact_paths`).
"""

from __future__ import annotations

import functools
import json
import threading
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import FileResponse
from sqlalchemy import select

from service.api.deps import JobDep, SessionDep, SettingsDep
from service.api.schemas import (
    ActiveUnits,
    ArtifactList,
    ArtifactOut,
    MutualInformation,
    RateDistortionOut,
    SamplesRequest,
    TrajectoryPoint,
    aware,
)
from service.artifact_paths import UnsafePath, check_relative, resolve_inside, resolve_under
from service.db.evaluations import evaluations
from service.db.metrics import read_series
from service.db.models import Artifact, Job

router = APIRouter(prefix="/api/v1/jobs", tags=["results"])

TORCH_SLOTS = threading.BoundedSemaphore(2)
SLOT_WAIT_S = 60.0
PNG = {"description": "A PNG image.", "content": {"image/png": {}}}
MEDIA = {".png": "image/png", ".svg": "image/svg+xml", ".json": "application/json",
         ".safetensors": "application/octet-stream"}


# ------------------------------------------------------------------ rate-distortion


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _history(session: Any, job: Job) -> dict[int, dict[str, Any]]:
    by_step = {e.step: e.summary for e in evaluations(session, job.id)}
    if not by_step and job.summary:  # evaluated before the history existed (migration 0003)
        by_step = {int(job.summary.get("step") or job.step or 0): job.summary}
    return by_step


def _training_trajectory(session: Any, job_id: uuid.UUID, max_points: int) -> list[TrajectoryPoint]:
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
    step: Annotated[int | None, Query(ge=0, description="An evaluated step; default the "
                                      "latest.")] = None,
    max_points: Annotated[int, Query(ge=2, le=10_000, description="Of the training "
                                     "trajectory.")] = 500,
) -> RateDistortionOut:
    history = _history(session, job)
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
                                             batch_size=_int(s.get("mi_batch_size"))),
        marginal_kl=_num(s.get("marginal_kl")), kl_per_unit=s.get("kl_per_unit"),
        kl_per_group=s.get("kl_per_group"), beta_effective=_num(s.get("beta_effective")),
        scheme_state=s.get("scheme_state"),
        trajectory=[TrajectoryPoint(step=k, rate=_num(history[k].get("rate")),
                                    distortion=_num(history[k].get("distortion")),
                                    elbo=_num(history[k].get("elbo"))) for k in steps],
        training_trajectory=_training_trajectory(session, job.id, max_points),
        summary=s,
    )


# ------------------------------------------------------------------ artifacts


def _job_rel(job_id: uuid.UUID, stored: str) -> str:
    prefix = f"{job_id}/"
    return stored[len(prefix):] if stored.startswith(prefix) else stored


def _artifact_out(job_id: uuid.UUID, a: Artifact) -> ArtifactOut:
    rel = _job_rel(job_id, a.path)
    return ArtifactOut(kind=a.kind, step=a.step, path=rel, bytes=a.bytes, sha256=a.sha256,
                       created_at=aware(a.created_at),
                       url=f"/api/v1/jobs/{job_id}/artifacts/{rel}")


def _file_of(settings: Any, a: Artifact) -> Path:
    """The artifact's file, checked to lie inside the artifact root (410 if it is gone)."""
    try:
        path = resolve_under(settings.artifacts, a.path)
    except UnsafePath as exc:  # a tampered row: refuse rather than follow it
        raise HTTPException(403, f"artifact path refused: {exc}") from None
    if not path.is_file():
        raise HTTPException(410, f"the file of artifact {a.path!r} is no longer stored")
    return path


def _serve(settings: Any, a: Artifact) -> FileResponse:
    path = _file_of(settings, a)
    return FileResponse(  # streamed in chunks by Starlette
        path, media_type=MEDIA.get(path.suffix, "application/octet-stream"),
        filename=path.name, headers={"ETag": f'"{a.sha256}"', "X-Vaelab-Sha256": a.sha256,
                                     "X-Vaelab-Step": str(a.step)},
    )


def _artifacts(session: Any, job_id: uuid.UUID, kind: str | None = None) -> list[Artifact]:
    q = select(Artifact).where(Artifact.job_id == job_id)
    if kind is not None:
        q = q.where(Artifact.kind == kind)
    return list(session.scalars(q.order_by(Artifact.kind, Artifact.step, Artifact.id)))


@router.get("/{job_id}/artifacts", response_model=ArtifactList)
def list_artifacts(job: JobDep, session: SessionDep) -> ArtifactList:
    rows = _artifacts(session, job.id)
    return ArtifactList(job_id=job.id, items=[_artifact_out(job.id, a) for a in rows],
                        total_bytes=sum(a.bytes for a in rows))


@router.get("/{job_id}/artifacts/{path:path}",
            responses={400: {"description": "Not a plain relative path."},
                       404: {"description": "No such artifact."}})
def get_artifact(job: JobDep, path: str, session: SessionDep,
                 settings: SettingsDep) -> FileResponse:
    try:
        rel = check_relative(path)
    except UnsafePath as exc:
        raise HTTPException(400, f"bad artifact path: {exc}") from None
    a = session.scalar(select(Artifact).where(Artifact.job_id == job.id,
                                              Artifact.path == f"{job.id}/{rel}"))
    if a is None:
        raise HTTPException(404, f"job {job.id} has no artifact {str(rel)!r}")
    return _serve(settings, a)


# ------------------------------------------------------------------ checkpoints


def _checkpoint(session: Any, job: Job, step: int | None) -> Artifact:
    rows = _artifacts(session, job.id, "checkpoint")
    if not rows:
        raise HTTPException(404, f"job {job.id} has no checkpoint yet")
    if step is None:
        return max(rows, key=lambda a: (a.step, a.id))
    for a in rows:
        if a.step == step:
            return a
    raise HTTPException(404, f"job {job.id} has no checkpoint at step {step}; "
                        f"steps: {[a.step for a in rows]}")


def _parse_step(step: str) -> int | None:
    if step == "latest":
        return None
    if not step.isdigit():
        raise HTTPException(422, [{"field": "step",
                                   "message": "an integer step or 'latest'"}])
    return int(step)


@router.get("/{job_id}/checkpoints", response_model=list[ArtifactOut])
def list_checkpoints(job: JobDep, session: SessionDep) -> list[ArtifactOut]:
    return [_artifact_out(job.id, a) for a in _artifacts(session, job.id, "checkpoint")]


@router.get("/{job_id}/checkpoints/{step}",
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "safetensors weights with a JSON header: "
                             "vae_engine.load_checkpoint(path) rebuilds the model."}})
def download_checkpoint(job: JobDep, step: str, session: SessionDep,
                        settings: SettingsDep) -> FileResponse:
    """``step`` is an integer or ``latest``."""
    return _serve(settings, _checkpoint(session, job, _parse_step(step)))


# ------------------------------------------------------------------ samples


@functools.lru_cache(maxsize=4)
def _load(path: str, sha256: str) -> Any:  # sha256: a rewritten file is a new entry
    from vae_engine.checkpoint import load_checkpoint

    return load_checkpoint(path)


_SPLITS: dict[str, Any] = {}  # the test splits of the last few datasets traversed
_SPLITS_LOCK = threading.Lock()  # up to TORCH_SLOTS handler threads use the cache at once


def _test_split(dataset: Any, dataset_root: Path) -> Any:
    """The test split of a checkpoint's dataset; an npz file is read only from inside the
    dataset root (a checkpoint's spec is not trusted to name any file on this host)."""
    from vae_engine.data import load_dataset

    for field in type(dataset).user_file_fields:
        try:
            dataset = dataset.model_copy(update={
                field: str(resolve_inside(dataset_root, getattr(dataset, field)))})
        except UnsafePath as exc:
            raise HTTPException(422, [{"field": f"spec.dataset.{field}",
                                       "message": str(exc)}]) from None
    key = json.dumps(dataset.model_dump(mode="json"), sort_keys=True)
    with _SPLITS_LOCK:  # held while loading: the other thread waits rather than loads twice
        if key not in _SPLITS:
            while len(_SPLITS) >= 2:
                _SPLITS.pop(next(iter(_SPLITS)))
            _SPLITS[key] = load_dataset(dataset).x_test
        return _SPLITS[key]


class _Slot:
    """One of TORCH_SLOTS for the duration of a torch computation."""

    def __enter__(self) -> None:
        if not TORCH_SLOTS.acquire(timeout=SLOT_WAIT_S):
            raise HTTPException(503, "all sample generators are busy; try again shortly",
                                headers={"Retry-After": "5"})

    def __exit__(self, *exc: object) -> None:
        TORCH_SLOTS.release()


def _engine_error(exc: Exception) -> HTTPException:
    return HTTPException(422, [{"field": "body", "message": str(exc)}])


@router.get("/{job_id}/samples", response_class=Response, responses={200: PNG})
def get_samples(
    job: JobDep, session: SessionDep, settings: SettingsDep,
    kind: Literal["prior", "recon", "traversal"] = "prior",
    step: Annotated[int | None, Query(ge=0, description="Default the latest.")] = None,
    index: Annotated[int, Query(ge=0, description="traversal: the test example.")] = 0,
    max_units: Annotated[int, Query(ge=1, le=64, description="traversal: rows.")] = 10,
) -> Response:
    """``prior``: samples from the prior; ``recon``: test examples beside their
    reconstructions (both written at each evaluation); ``traversal``: each active unit
    varied around test example ``index`` (computed from the checkpoint at ``step``)."""
    if kind == "traversal":
        return Response(_traversal(job, session, settings, step, index, max_units),
                        media_type="image/png")
    rows = _artifacts(session, job.id, "samples" if kind == "prior" else kind)
    if step is not None:
        rows = [a for a in rows if a.step == step]
    if not rows:
        raise HTTPException(404, f"job {job.id} has no {kind} grid"
                            + (f" at step {step}" if step is not None else " yet"))
    return _serve(settings, max(rows, key=lambda a: (a.step, a.id)))


def _traversal(job: Job, session: Any, settings: Any, step: int | None, index: int,
               max_units: int) -> bytes:
    a = _checkpoint(session, job, step)
    path = str(_file_of(settings, a))
    summary = _history(session, job).get(a.step) or {}
    scores = summary.get("active_units_variance")
    with _Slot():
        import torch

        from vae_engine.errors import VaelabError
        from vae_engine.traversal import traversal_png

        if scores is not None and any(v is None for v in scores):
            scores = None
        try:
            ck = _load(path, a.sha256)
            # a missing or damaged dataset file is a DataError (a VaelabError): 422, not 500
            x_test = _test_split(ck.spec.dataset, settings.datasets)
            if index >= x_test.shape[0]:
                raise HTTPException(422, [{"field": "index", "message": f"the test split has "
                                           f"{x_test.shape[0]} examples"}])
            with torch.no_grad():
                return traversal_png(ck, x_test[index : index + 1], max_units=max_units,
                                     unit_scores=scores)
        except VaelabError as exc:
            raise _engine_error(exc) from None


@router.post("/{job_id}/samples", response_class=Response, responses={200: PNG})
def new_samples(job: JobDep, body: SamplesRequest, session: SessionDep,
                settings: SettingsDep) -> Response:
    """n fresh samples (likelihood means at z ~ N(0, T² I)) from the checkpoint at ``step``
    (default the latest); the same seed gives the same image."""
    a = _checkpoint(session, job, body.step)
    path = str(_file_of(settings, a))
    with _Slot():
        from vae_engine.errors import VaelabError
        from vae_engine.traversal import fresh_samples

        try:
            png = fresh_samples(_load(path, a.sha256), body.n, body.temperature, body.seed)
        except VaelabError as exc:
            raise _engine_error(exc) from None
    return Response(png, media_type="image/png",
                    headers={"X-Vaelab-Step": str(a.step)})
