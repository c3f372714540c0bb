"""The ``vaelab`` command: ``train`` runs a spec locally (vae_engine.cli); the service adds
``serve``, ``api``, ``worker``, ``migrate``, ``submit``, ``jobs``, ``status`` and ``cancel``.

Subcommands import their dependencies lazily so ``vaelab --help`` stays fast (and so the
worker's parent process never imports torch).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    from vae_engine import cli as engine_cli

    parser = argparse.ArgumentParser(prog="vaelab", description="Train and study VAEs.")
    sub = parser.add_subparsers(dest="command", required=True)
    engine_cli.add_train_parser(sub)
    add_service_parsers(sub)
    return parser


def add_service_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="Run the API and a worker with no configuration "
                       "(SQLite, a server-less broker, ./vaelab-data/).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--data-dir", default=None, help="Default ./vaelab-data (VAELAB_DATA_DIR).")
    p.add_argument("--no-worker", action="store_true", help="Run the API only.")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("api", help="Run the API only (lab deployment; migrate first).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes.")
    p.set_defaults(func=cmd_api)

    p = sub.add_parser("worker", help="Run Celery workers: --cpu, or one per GPU with --gpus.")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--gpus", help="Comma-separated GPU indices (one worker each) or 'all'.")
    g.add_argument("--cpu", action="store_true", help="A CPU worker on the cpu queue.")
    g.add_argument("--queues", help="Consume these queues in one worker (comma-separated).")
    p.add_argument("--concurrency", type=int, default=1, help="Jobs at once (--cpu/--queues).")
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("migrate", help="Bring the database up to date (alembic upgrade head).")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=cmd_migrate)

    def client_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", default=None,
                       help="API URL (default VAELAB_API_URL or http://127.0.0.1:8000).")
        p.add_argument("--user", default=None, help="Sent as X-Vaelab-User.")

    p = sub.add_parser("submit", help="Submit a spec file to the API.")
    p.add_argument("spec", help="YAML or JSON TrainSpec.")
    p.add_argument("--priority", type=int, default=0)
    p.add_argument("--tag", action="append", default=[], dest="tags")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--watch", action="store_true", help="Follow progress until it ends.")
    client_args(p)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("jobs", help="List jobs.")
    p.add_argument("--status")
    p.add_argument("--tag")
    p.add_argument("--owner")
    p.add_argument("--limit", type=int, default=20)
    client_args(p)
    p.set_defaults(func=cmd_jobs)

    for name, helptext, fn in (("status", "Show one job.", cmd_status),
                               ("cancel", "Cancel a job.", cmd_cancel)):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("id")
        p.add_argument("--json", action="store_true")
        client_args(p)
        p.set_defaults(func=fn)


# ---------------------------------------------------------------- server side


def cmd_serve(args: argparse.Namespace) -> int:
    from service.serve import serve

    return serve(args.host, args.port, args.data_dir, with_worker=not args.no_worker)


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run("service.main:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from service.core.config import get_settings
    from worker import launcher

    s = get_settings()
    host = socket.gethostname()
    if args.gpus:
        return launcher.run_gpu_workers(launcher.parse_gpus(args.gpus), s.gpu_queue,
                                        args.loglevel)
    if args.cpu:
        import os

        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # a CPU worker never takes a GPU
        return launcher.run_in_process([s.cpu_queue], f"cpu@{host}", args.concurrency,
                                       args.loglevel)
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    return launcher.run_in_process(queues, f"{'+'.join(queues)}@{host}", args.concurrency,
                                   args.loglevel)


def cmd_migrate(args: argparse.Namespace) -> int:
    from service.core.config import get_settings
    from service.db import migrate

    s = get_settings()
    s.ensure_dirs()
    migrate.upgrade(s.db_url, args.revision)
    print(f"vaelab: database at {migrate.current_revision(s.db_url)} ({_safe_url(s.db_url)})")
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# ---------------------------------------------------------------- client side


def _client(args: argparse.Namespace):  # noqa: ANN202
    from service.client import Client
    from service.core.config import get_settings

    return Client(args.url or get_settings().api_url, args.user)


def _run_client(fn, args: argparse.Namespace) -> int:  # noqa: ANN001
    import httpx

    from service.client import ApiError

    try:
        return fn(args)
    except ApiError as exc:
        print(f"vaelab: {exc}", file=sys.stderr)
        return 2
    except httpx.TransportError as exc:
        print(f"vaelab: cannot reach the API: {exc} (is `vaelab serve` running?)",
              file=sys.stderr)
        return 3


def cmd_submit(args: argparse.Namespace) -> int:
    return _run_client(_submit, args)


def _submit(args: argparse.Namespace) -> int:
    import yaml

    try:
        with open(args.spec) as fh:
            spec = yaml.safe_load(fh)  # YAML is a superset of JSON
    except OSError as exc:
        print(f"vaelab: cannot read {args.spec}: {exc.strerror}", file=sys.stderr)
        return 2
    client = _client(args)
    job = client.submit(spec, priority=args.priority, tags=args.tags, device=args.device)
    print(f"submitted {job['id']} ({job['name']}, queue {job['queue']})", flush=True)
    if not args.watch:
        return 0
    final = watch(client, job["id"])
    return 0 if final["status"] == "succeeded" else 1


def watch(client, job_id: str) -> dict[str, Any]:  # noqa: ANN001
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    latest: dict[str, float | None] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} steps"), TimeRemainingColumn(),
                  TextColumn("{task.fields[loss]}")) as bar:
        task = bar.add_task("queued", total=None, loss="")
        for event, data, _eid in client.events(job_id):
            if event == "status":
                prog = data["progress"]
                bar.update(task, description=data["status"], completed=prog["step"],
                           total=prog["total_steps"])
            elif event == "metrics":
                for p in data["points"]:
                    latest[p["key"]] = p["value"]
                step = max(p["step"] for p in data["points"])
                loss = latest.get("loss")
                bar.update(task, completed=step,
                           loss=f"loss {loss:.4g}" if isinstance(loss, float) else "")
            elif event == "end":
                bar.update(task, description=data["status"])
    final = client.job(job_id)
    print(_summary_text(final))
    return final


def _summary_text(job: dict[str, Any]) -> str:
    lines = [f"job {job['id']}: {job['status']} at step {job['progress']['step']}"
             f"/{job['progress']['total_steps']} (attempts {job['attempts']})"]
    if job.get("error"):
        lines.append(f"  error: {job['error']}")
    summary = job.get("summary") or {}
    for key in ("elbo", "iwae", "rate", "distortion", "bits_per_dim", "active_units",
                "mutual_information"):
        if isinstance(summary.get(key), int | float):
            lines.append(f"  {key:>20}: {summary[key]:.4f}")
    return "\n".join(lines)


def cmd_jobs(args: argparse.Namespace) -> int:
    def run(a: argparse.Namespace) -> int:
        page = _client(a).jobs(status=a.status, tag=a.tag, owner=a.owner, limit=a.limit)
        print(f"{'id':36}  {'status':9}  {'progress':>13}  {'owner':12}  name")
        for j in page["items"]:
            prog = f"{j['progress']['step']}/{j['progress']['total_steps'] or '?'}"
            print(f"{j['id']:36}  {j['status']:9}  {prog:>13}  {j['owner'][:12]:12}  "
                  f"{j['name']}")
        print(f"({len(page['items'])} of {page['total']})")
        return 0

    return _run_client(run, args)


def cmd_status(args: argparse.Namespace) -> int:
    def run(a: argparse.Namespace) -> int:
        job = _client(a).job(a.id)
        print(json.dumps(job, indent=2) if a.json else _summary_text(job))
        return 0

    return _run_client(run, args)


def cmd_cancel(args: argparse.Namespace) -> int:
    def run(a: argparse.Namespace) -> int:
        job = _client(a).cancel(a.id)
        print(json.dumps(job, indent=2) if a.json else
              f"job {job['id']}: {job['status']}"
              + (" (cancel requested)" if job["status"] == "running" else ""))
        return 0

    return _run_client(run, args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
