"""The queue commands: ``queue`` (running and waiting jobs in release order, each waiting
job with the reason it waits) and ``preempt`` (an admin's)."""

from __future__ import annotations

import argparse
import json

from service.cli.common import client_args, make_client


def add_queue(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("queue", help="Running and waiting jobs in release order, with the "
                       "reason each waiting job waits.")
    p.add_argument("--json", action="store_true", help="Print the API's JSON.")
    client_args(p)
    p.set_defaults(func=cmd_queue)
    p = sub.add_parser("preempt", help="Admin: a running job checkpoints and waits again.")
    p.add_argument("id", help="A job id or a unique prefix of 6+ characters.")
    client_args(p)
    p.set_defaults(func=cmd_preempt)


def queue_text(q: dict) -> str:
    lines = [f"{'#':>3}  {'id':8}  {'state':8}  {'owner':12}  {'pri':>3}  {'queue':6}  "
             f"{'pre':>3}  reason"]
    for e in q["items"]:
        j = e["job"]
        lines.append(f"{e['position']:>3}  {j['id'][:8]}  {e['state']:8}  {j['owner'][:12]:12}  "
                     f"{j['priority']:>3}  {j['queue'][:6]:6}  {j.get('preemptions', 0):>3}  "
                     f"{e['reason'] or ''}")
    slots = sum(w["slots"] for w in q["workers"] if w["live"])
    busy = sum(w["busy"] for w in q["workers"] if w["live"])
    lines.append(f"({q['running']} running, {q['waiting']} waiting; {busy} of {slots} slots "
                 f"busy on {sum(1 for w in q['workers'] if w['live'])} live workers)")
    if q.get("hidden"):
        n = q["hidden"]
        lines.append(f"({n} job{'s' if n != 1 else ''} of other users not shown: the lab's "
                     f"read scope is owner-only)")
    return "\n".join(lines)


def cmd_queue(args: argparse.Namespace) -> int:
    q = make_client(args).queue()
    print(json.dumps(q, indent=2) if args.json else queue_text(q))
    return 0


def cmd_preempt(args: argparse.Namespace) -> int:
    client = make_client(args)
    job = client.preempt(client.job(args.id)["id"])
    print(f"job {job['id']}: preemption requested (it checkpoints and waits again)")
    return 0
