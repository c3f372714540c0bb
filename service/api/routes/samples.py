"""``/api/v1/jobs/{id}/samples``: the sample and reconstruction grids a job wrote, latent
traversals, and fresh samples from a checkpoint. The last two run the model: they go through
:mod:`service.core.inference` (imported on first use, so the API starts without torch)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Query, Response

from service.api.artifact_files import artifact_file, checkpoint_or_404, serve_artifact
from service.api.deps import JobDep, SessionDep, SettingsDep
from service.api.params import Step
from service.api.responses import BY_ID, FILES
from service.api.schemas import SamplesRequest
from service.db.artifacts import newest_artifact
from service.db.evaluations import summaries_by_step

router = APIRouter(prefix="/api/v1/jobs", tags=["results"],
                   responses={**BY_ID, **FILES,
                              503: {"description": "The inference slot is busy; retry."}})

PNG = {"description": "A PNG image.", "content": {"image/png": {}}}
GRID_KIND = {"prior": "samples", "recon": "recon"}  # query kind -> artifact kind

T = TypeVar("T")


def _infer(run: Callable[[], T]) -> T:
    """Run an inference call, its errors as HTTP: busy 503, bad input 422."""
    from service.core.inference import BadInferenceInput, InferenceBusy

    try:
        return run()
    except InferenceBusy as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
    except BadInferenceInput as exc:
        raise HTTPException(422, [{"field": exc.field, "message": exc.message}]) from None


@router.get("/{job_id}/samples", response_class=Response, responses={200: PNG})
def get_samples(
    job: JobDep, session: SessionDep, settings: SettingsDep,
    kind: Literal["prior", "recon", "traversal"] = "prior",
    step: Annotated[Step | None, Query(description="Default the latest.")] = None,
    index: Annotated[Step, Query(description="traversal: the test example.")] = 0,
    max_units: Annotated[int, Query(ge=1, le=64, description="traversal: rows.")] = 10,
) -> Response:
    """``prior``: samples from the prior; ``recon``: test examples beside their
    reconstructions (both written at each evaluation); ``traversal``: each active unit
    varied around test example ``index`` (computed from the checkpoint at ``step``)."""
    if kind != "traversal":
        a = newest_artifact(session, job.id, GRID_KIND[kind], step)
        if a is None:
            raise HTTPException(404, f"job {job.id} has no {kind} grid"
                                + (f" at step {step}" if step is not None else " yet"))
        return serve_artifact(settings, a)
    from service.core import inference

    a = checkpoint_or_404(session, job, step)
    path = str(artifact_file(settings, a))
    scores = (summaries_by_step(session, job).get(a.step) or {}).get("active_units_variance")
    png = _infer(lambda: inference.traversal(path, a.sha256, settings.datasets, index,
                                             max_units, unit_scores=scores))
    return Response(png, media_type="image/png")


@router.post("/{job_id}/samples", response_class=Response, responses={200: PNG})
def new_samples(job: JobDep, body: SamplesRequest, session: SessionDep,
                settings: SettingsDep) -> Response:
    """n fresh samples (likelihood means at z ~ N(0, T² I)) from the checkpoint at ``step``
    (default the latest); the same seed gives the same image."""
    from service.core import inference

    a = checkpoint_or_404(session, job, body.step)
    path = str(artifact_file(settings, a))
    png = _infer(lambda: inference.fresh_samples(path, a.sha256, body.n, body.temperature,
                                                 body.seed))
    return Response(png, media_type="image/png", headers={"X-Vaelab-Step": str(a.step)})
