"""``vaelab sweep``: submit a sweep file (``{name, base, grid | overrides}``), following it
with ``--watch`` (:mod:`.watch`); ``vaelab sweeps``: list sweeps, show or cancel one."""

from __future__ import annotations

import argparse
from typing import Any

from service.cli.common import client_args, make_client, read_file
from service.cli.text import counts_text, sweep_text


def add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="Submit a sweep file: {name, base, grid | overrides}.")
    p.add_argument("file", help="YAML/JSON: base (a spec or a path to one), grid or overrides, "
                   "optional tags, priority, resources.")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default=None,
                   help="Overrides the file's resources.device.")
    p.add_argument("--watch", action="store_true", help="Follow progress until every job ends.")
    client_args(p)
    p.set_defaults(func=cmd_sweep)


def add_sweeps(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweeps", help="List sweeps; show or cancel one.",
                       description="vaelab sweeps [list | show ID | cancel ID]")
    client_args(p)
    _list_args(p, None, 20)
    p.set_defaults(func=cmd_sweeps_list)
    actions = p.add_subparsers(dest="action")
    lst = actions.add_parser("list", help="List sweeps, newest first (the default).")
    _list_args(lst, argparse.SUPPRESS, argparse.SUPPRESS)
    lst.set_defaults(func=cmd_sweeps_list)
    for name, helptext, fn in (
            ("show", "A sweep's progress and every job with its parameters.", cmd_sweeps_show),
            ("cancel", "Cancel a sweep: queued jobs at once, running ones at their next "
                       "step.", cmd_sweeps_cancel)):
        a = actions.add_parser(name, help=helptext)
        a.add_argument("id", help="A sweep id or a unique prefix of 6+ characters.")
        a.add_argument("--json", action="store_true", help="Print the API's JSON.")
        a.set_defaults(func=fn)
    for a in (lst, *[actions.choices[n] for n in ("show", "cancel")]):
        client_args(a, nested=True)


def _list_args(p: argparse.ArgumentParser, owner: Any, limit: Any) -> None:
    p.add_argument("--owner", default=owner, help="Only this owner's sweeps.")
    p.add_argument("--limit", type=int, default=limit, help="How many (default 20).")


def cmd_sweeps_list(args: argparse.Namespace) -> int:
    page = make_client(args).sweeps(owner=args.owner, limit=args.limit)
    print(f"{'id':8}  {'status':9}  {'jobs':>13}  {'owner':12}  {'name':20}  varied")
    for sw in page["items"]:
        p = sw["progress"]
        print(f"{sw['id'][:8]}  {sw['status']:9}  {p['finished']:>5}/{p['total']:<3} done  "
              f"{sw['owner'][:12]:12}  {sw['name'][:20]:20}  {', '.join(sw['varied'])}")
    print(f"({len(page['items'])} of {page['total']})")
    return 0


def cmd_sweeps_show(args: argparse.Namespace) -> int:
    import json

    sw = make_client(args).sweep(args.id)
    print(json.dumps(sw, indent=2) if args.json else sweep_text(sw))
    return 0


def cmd_sweeps_cancel(args: argparse.Namespace) -> int:
    import json

    sw = make_client(args).cancel_sweep(args.id)
    print(json.dumps(sw, indent=2) if args.json else
          f"sweep {sw['id']}: cancel requested ({counts_text(sw)})")
    return 0


def load_sweep_file(path: str) -> dict[str, Any]:
    """A sweep file as a ``POST /api/v1/sweeps`` body; ``base`` may be a path to a spec file
    (relative to the sweep file)."""
    from pathlib import Path

    from vae_engine.clierrors import FileProblem

    doc = read_file(path)
    if not isinstance(doc, dict):
        raise FileProblem(f"{path}: a sweep file is a mapping with base and grid or overrides")
    base = doc.get("base")
    if isinstance(base, str):
        doc["base"] = read_file(str(Path(path).parent / base))
    return doc


def cmd_sweep(args: argparse.Namespace) -> int:
    def run(a: argparse.Namespace) -> int:
        body = load_sweep_file(a.file)
        if a.device:
            body["resources"] = {**(body.get("resources") or {}), "device": a.device}
        client = make_client(a)
        sw = client.create_sweep(body)
        print(f"sweep {sw['id']} ({sw['name']}): {len(sw['jobs'])} jobs", flush=True)
        if not a.watch:
            return 0
        from service.cli.watch import watch_sweep

        return 0 if watch_sweep(client, sw["id"])["status"] == "finished" else 1

    return run(args)
