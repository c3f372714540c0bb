"""``vaelab sweep``: submit a sweep file (``{name, base, grid | overrides}``) and, with
``--watch``, follow its jobs until every one has ended."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from service.cli.common import client_args, make_client, read_file

if TYPE_CHECKING:
    from service.client import Client


def add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="Submit a sweep file: {name, base, grid | overrides}.")
    p.add_argument("file", help="YAML/JSON: base (a spec or a path to one), grid or overrides, "
                   "optional tags, priority, resources.")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default=None,
                   help="Overrides the file's resources.device.")
    p.add_argument("--watch", action="store_true", help="Follow progress until every job ends.")
    client_args(p)
    p.set_defaults(func=cmd_sweep)


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
        return 0 if watch_sweep(client, sw["id"])["status"] == "finished" else 1

    return run(args)


def watch_sweep(client: Client, sweep_id: str, poll_s: float = 2.0) -> dict[str, Any]:
    """Poll the sweep into a progress bar until all its jobs have ended; print and return it.
    (Polled, not streamed: the API streams events per job, and a sweep may have hundreds.)"""
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
