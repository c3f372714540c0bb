"""The job commands: ``submit`` (``--watch`` follows it: :mod:`.watch`), ``jobs``,
``status`` and ``cancel``."""

from __future__ import annotations

import argparse
import json

from service.cli.common import client_args, make_client, read_file
from service.cli.text import params_text, progress_text, size_text, summary_text


def add_submit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="Submit a spec file to the API.")
    p.add_argument("spec", help="YAML or JSON TrainSpec.")
    p.add_argument("--priority", type=int, default=0, help="0..9, 9 runs first (default 0).")
    p.add_argument("--tag", action="append", default=[], dest="tags",
                   help="A tag for the job (repeatable).")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto",
                   help="Where it runs: the GPU queue, the CPU queue, or the deployment's "
                        "default (auto).")
    p.add_argument("--watch", action="store_true", help="Follow progress until it ends.")
    client_args(p)
    p.set_defaults(func=cmd_submit)


def add_jobs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("jobs", help="List jobs, newest first, with each sweep job's "
                       "parameters.")
    p.add_argument("--status", help="Only jobs in this status (queued, running, succeeded, "
                   "failed, cancelled).")
    p.add_argument("--tag", help="Only jobs with this tag.")
    p.add_argument("--owner", help="Only this owner's jobs.")
    p.add_argument("--sweep", help="Only the jobs of this sweep (an id or a prefix).")
    p.add_argument("--limit", type=int, default=20, help="How many (default 20).")
    client_args(p)
    p.set_defaults(func=cmd_jobs)


def add_status_and_cancel(sub: argparse._SubParsersAction) -> None:
    for name, helptext, fn in (("status", "Show one job.", cmd_status),
                               ("cancel", "Cancel a job.", cmd_cancel)):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("id", help="A job id or a unique prefix of 6+ characters.")
        p.add_argument("--json", action="store_true", help="Print the API's JSON.")
        client_args(p)
        p.set_defaults(func=fn)


def cmd_submit(args: argparse.Namespace) -> int:
    return _submit(args)


def _submit(args: argparse.Namespace) -> int:
    spec = read_file(args.spec)
    client = make_client(args)
    job = client.submit(spec, priority=args.priority, tags=args.tags, device=args.device)
    print(f"submitted {job['id']} ({job['name']}, queue {job['queue']})", flush=True)
    if not args.watch:
        return 0
    from service.cli.watch import watch

    final = watch(client, job["id"])
    return 0 if final["status"] == "succeeded" else 1


def cmd_jobs(args: argparse.Namespace) -> int:
    client = make_client(args)
    sweep = client.sweep(args.sweep)["id"] if args.sweep else None
    page = client.jobs(status=args.status, tag=args.tag, owner=args.owner, sweep=sweep,
                       limit=args.limit)
    print(f"{'id':8}  {'status':9}  {'progress':>13}  {'owner':12}  name")
    for j in page["items"]:
        params = params_text(j.get("sweep_params"))
        print(f"{j['id'][:8]}  {j['status']:9}  {progress_text(j):>13}  {j['owner'][:12]:12}  "
              f"{j['name']}{'  ' + params if params else ''}")
    print(f"({len(page['items'])} of {page['total']})")
    return 0


def add_rm(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rm", help="Delete finished jobs with their metrics and files.")
    p.add_argument("ids", nargs="+", metavar="id",
                   help="Job ids or unique prefixes of 6+ characters.")
    client_args(p)
    p.set_defaults(func=cmd_rm)


def cmd_rm(args: argparse.Namespace) -> int:
    client = make_client(args)
    for text in args.ids:
        job = client.job(text)  # the whole id, and a clear error for a bad prefix
        client.delete_job(job["id"])
        print(f"deleted job {job['id']} ({job['name']}, {job['status']}, "
              f"{size_text(job.get('storage_bytes') or 0)} freed)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    job = make_client(args).job(args.id)
    print(json.dumps(job, indent=2) if args.json else summary_text(job))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    job = make_client(args).cancel(args.id)
    print(json.dumps(job, indent=2) if args.json else
          f"job {job['id']}: {job['status']}"
          + (" (cancel requested)" if job["status"] == "running" else ""))
    return 0
