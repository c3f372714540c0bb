"""The dashboard's pages. Each handler renders a server-side shell (navigation, headings, the
filter form from the query string); the page's script then reads and follows everything
through the public API (``/api/v1/...``), the same calls a notebook makes. No SQL here."""

from __future__ import annotations

import uuid

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from service.api.deps import JobDep, SweepDep
from service.web import TEMPLATE_DIR

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=TEMPLATE_DIR)

# the job list's filters (each a query parameter of GET /api/v1/jobs) and sortable columns
FILTERS = ("status", "owner", "dataset", "arch", "likelihood", "kl", "tag", "sweep")
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


def _page(request: Request, template: str, **context: object) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {"page": template.removesuffix(".html"),
                                                      **context})


@router.get("/", response_class=HTMLResponse)
def jobs_page(request: Request) -> HTMLResponse:
    q = request.query_params
    return _page(request, "jobs.html", filters={f: q.get(f, "") for f in FILTERS},
                 statuses=STATUSES, sort=q.get("sort", "-created_at"))


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job: JobDep) -> HTMLResponse:
    spec = yaml.safe_dump(job.spec, sort_keys=False, default_flow_style=False)
    return _page(request, "job.html", job_id=str(job.id), name=job.name, spec_yaml=spec)


@router.get("/sweeps/{sweep_id}", response_class=HTMLResponse)
def sweep_page(request: Request, sweep: SweepDep) -> HTMLResponse:
    return _page(request, "sweep.html", sweep_id=str(sweep.id), name=sweep.name)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, ids: str = "", group_by: str = "",
                 keys: str = "") -> HTMLResponse:
    valid = []
    for raw in ids.split(","):
        try:
            valid.append(str(uuid.UUID(raw.strip())))
        except ValueError:
            continue
    return _page(request, "compare.html", ids=valid, group_by=group_by, keys=keys)


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request) -> HTMLResponse:
    return _page(request, "queue.html")
