"""The ``vaelab`` command: ``train`` runs a spec locally (vae_engine.cli); the service adds
``serve``, ``api``, ``worker``, ``migrate``, ``submit``, ``jobs``, ``status``, ``cancel``,
``sweep``, ``rd`` and ``download``.

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

    p = sub.add_parser("sweep", help="Submit a sweep file: {name, base, grid | overrides}.")
    p.add_argument("file", help="YAML/JSON: base (a spec or a path to one), grid or overrides, "
                   "optional tags, priority, resources.")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default=None,
                   help="Overrides the file's resources.device.")
    p.add_argument("--watch", action="store_true", help="Follow progress until every job ends.")
    client_args(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("rd", help="Rate-distortion of a sweep (its frontier) or of a job.")
    p.add_argument("id", help="A sweep id or a job id.")
    p.add_argument("--out", default=None,
                   help="Write the sweep's plot (.png/.svg), table (.csv) or JSON (.json).")
    p.add_argument("--step", type=int, default=None, help="A job's evaluation at this step.")
    client_args(p)
    p.set_defaults(func=cmd_rd)

    p = sub.add_parser("download", help="Download a job's checkpoint (the latest by default).")
    p.add_argument("id", help="A job id.")
    p.add_argument("--step", type=int, default=None)
    p.add_argument("--out", default=None, help="Default <job id>-step<step>.safetensors.")
    client_args(p)
    p.set_defaults(func=cmd_download)

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
    from service.core import launcher
    from service.core.config import get_settings

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


def load_sweep_file(path: str) -> dict[str, Any]:
    """A sweep file as a ``POST /api/v1/sweeps`` body; ``base`` may be a path to a spec file
    (relative to the sweep file)."""
    from pathlib import Path

    import yaml

    with open(path) as fh:
        doc = yaml.safe_load(fh)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: a sweep file is a mapping with base and grid or overrides")
    base = doc.get("base")
    if isinstance(base, str):
        spec_path = Path(path).parent / base
        with open(spec_path) as fh:
            doc["base"] = yaml.safe_load(fh)
    return doc


def cmd_sweep(args: argparse.Namespace) -> int:
    def run(a: argparse.Namespace) -> int:
        try:
            body = load_sweep_file(a.file)
        except (OSError, ValueError) as exc:
            print(f"vaelab: cannot read {a.file}: {exc}", file=sys.stderr)
            return 2
        if a.device:
            body["resources"] = {**(body.get("resources") or {}), "device": a.device}
        client = _client(a)
        sw = client.create_sweep(body)
        print(f"sweep {sw['id']} ({sw['name']}): {len(sw['jobs'])} jobs", flush=True)
        if not a.watch:
            return 0
        return 0 if watch_sweep(client, sw["id"])["status"] == "finished" else 1

    return _run_client(run, args)


def watch_sweep(client, sweep_id: str, poll_s: float = 2.0) -> dict[str, Any]:  # noqa: ANN001
    import time

    from rich.progress import BarColumn, Progress, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.fields[counts]}")) as bar:
        task = bar.add_task("sweep", total=1.0, counts="")
        while True:
            sw = client.sweep(sweep_id)
            p = sw["progress"]
            counts = ", ".join(f"{n} {s}" for s, n in p["counts"].items() if n)
            bar.update(task, completed=p["fraction"], description=sw["status"], counts=counts)
            if p["finished"] == p["total"]:
                break
            time.sleep(poll_s)
    print(f"sweep {sw['id']}: {sw['status']} ({counts})")
    return sw


def cmd_rd(args: argparse.Namespace) -> int:
    from service.client import ApiError

    def run(a: argparse.Namespace) -> int:
        client = _client(a)
        try:
            client.sweep(a.id)
        except ApiError as exc:
            if exc.status != 404:
                raise
            return _job_rd(client, a)
        return _sweep_rd(client, a)

    return _run_client(run, args)


def _sweep_rd(client, a: argparse.Namespace) -> int:  # noqa: ANN001
    if a.out:
        fmt = a.out.rsplit(".", 1)[-1].lower()
        if fmt not in ("png", "svg", "csv", "json"):
            print("vaelab: --out must end in .png, .svg, .csv or .json", file=sys.stderr)
            return 2
        data = client.sweep_rd(a.id, fmt)
        with open(a.out, "wb") as fh:
            fh.write(json.dumps(data, indent=2).encode() if fmt == "json" else data)
        print(f"wrote {a.out}")
        return 0
    fr = client.sweep_rd(a.id)
    rows = fr["aggregated"] or fr["points"]
    print(f"{fr['finished']}/{fr['total']} runs finished"
          + (" (mean over seeds)" if fr["aggregated"] else ""))
    print(f"{'rate':>10} {'distortion':>11} {'elbo':>10} {'iwae':>10}  front  params")
    for r in sorted(rows, key=lambda r: (r["rate"] is None, r["rate"])):
        nums = " ".join(f"{r[k]:>10.3f}" if r[k] is not None else f"{'-':>10}"
                        for k in ("rate", "distortion", "elbo", "iwae"))
        print(f"{nums}  {'*' if r['on_frontier'] else ' ':^5}  "
              + ", ".join(f"{k}={v}" for k, v in r["params"].items()))
    return 0


def _job_rd(client, a: argparse.Namespace) -> int:  # noqa: ANN001
    rd = client.job_rd(a.id, a.step)
    if a.out:
        if not a.out.endswith(".json"):
            print("vaelab: a job's rate-distortion is written as .json", file=sys.stderr)
            return 2
        with open(a.out, "w") as fh:
            json.dump(rd, fh, indent=2)
        print(f"wrote {a.out}")
        return 0
    print(f"job {rd['job_id']} at step {rd['step']} ({rd['status']})")
    for key in ("rate", "distortion", "elbo", "iwae", "bits_per_dim", "marginal_kl",
                "beta_effective"):
        if rd.get(key) is not None:
            print(f"  {key:>20}: {rd[key]:.4f}")
    print(f"  {'active_units':>20}: {rd['active_units']['count']}")
    mi = rd["mutual_information"]
    if mi["value"] is not None:
        print(f"  {'mutual_information':>20}: {mi['value']:.4f} (batch {mi['batch_size']})")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    def run(a: argparse.Namespace) -> int:
        import os

        out = a.out or f"{a.id}-{'latest' if a.step is None else f'step{a.step}'}.safetensors"
        tmp = out + ".part"
        try:
            with open(tmp, "wb") as fh:
                headers = _client(a).download_checkpoint(a.id, fh, a.step)
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        print(f"wrote {out} (step {headers.get('x-vaelab-step')}, "
              f"sha256 {headers.get('x-vaelab-sha256')})")
        return 0

    return _run_client(run, args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
