"""Following a job or a sweep: ``vaelab watch JOB_OR_SWEEP`` (re-attach at any time), and
``submit --watch`` / ``sweep --watch``.

A job is followed on its event stream with a progress bar (steps, the API's ETA counted
down between events, the loss); a sweep is polled. Either survives an API restart: the
client reconnects (``Last-Event-ID`` for a job) with a growing pause, saying that it waits.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from service.cli.common import client_args, make_client
from service.cli.text import duration

if TYPE_CHECKING:
    from rich.progress import Task

    from service.client import Client


def add_watch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("watch", help="Follow a job or a sweep until it ends (re-attach).")
    p.add_argument("id", help="A job or sweep id, or a unique prefix of 6+ characters.")
    client_args(p)
    p.set_defaults(func=cmd_watch)


def cmd_watch(args: argparse.Namespace) -> int:
    from service.client import ApiError

    client = make_client(args)
    try:
        sweep = client.sweep(args.id)
    except ApiError as exc:
        if exc.status not in (404, 422):
            raise
        job = client.job(args.id)
        return 0 if watch(client, job["id"])["status"] == "succeeded" else 1
    return 0 if watch_sweep(client, sweep["id"])["status"] == "finished" else 1


def _waiting(console: Any) -> Any:
    def say(why: str, pause: float) -> None:
        console.print(f"[yellow]waiting for the API: {why}; retrying in {pause:g} s "
                      "(Ctrl-C to stop watching; the job goes on)[/]")
    return say


def watch(client: Client, job_id: str) -> dict[str, Any]:
    """Follow a job's events with a progress bar until it ends; print and return its final
    state."""
    from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
    from rich.text import Text

    from service.cli.text import summary_text

    class Eta(ProgressColumn):
        def render(self, task: Task) -> Text:
            at = task.fields.get("eta_at")
            return Text("ETA " + duration(None if at is None else max(0.0, at - time.monotonic())))

    latest: dict[str, float | None] = {}
    shown_warnings: set[str] = set()
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.fields[steps]}"), Eta(),
                  TextColumn("{task.fields[loss]}")) as bar:
        task = bar.add_task("connecting", total=None, steps="", loss="", eta_at=None)
        on_wait = _waiting(bar.console)
        for event, data, _eid in client.events(job_id, on_wait=on_wait):
            if event == "status":
                prog = data["progress"]
                eta = prog.get("eta_seconds")
                total = prog["total_steps"]
                bar.update(task, description=data["status"], completed=prog["step"],
                           total=total, eta_at=None if eta is None else time.monotonic() + eta,
                           steps=f"{prog['step']}/{total} steps" if total else "waiting")
                for w in data.get("warnings") or []:
                    if w not in shown_warnings:
                        shown_warnings.add(w)
                        bar.console.print(f"[yellow]warning: {w}[/]")
            elif event == "metrics":
                for p in data["points"]:
                    latest[p["key"]] = p["value"]
                step = max(p["step"] for p in data["points"])
                loss = latest.get("loss")
                total = bar.tasks[0].total
                bar.update(task, completed=step,
                           steps=f"{step}/{total} steps" if total else f"step {step}",
                           loss=f"loss {loss:.4g}" if isinstance(loss, float) else "")
            elif event == "end":
                bar.update(task, description=data["status"], eta_at=None)
        final = client.retrying(lambda: client.job(job_id), on_wait)
    print(summary_text(final))
    return final


def watch_sweep(client: Client, sweep_id: str, poll_s: float = 2.0) -> dict[str, Any]:
    """Poll the sweep into a progress bar until all its jobs have ended; print and return it.
    (Polled, not streamed: the API streams events per job, and a sweep may have hundreds.)"""
    from rich.progress import BarColumn, Progress, TextColumn

    from service.cli.text import counts_text

    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.fields[counts]}")) as bar:
        task = bar.add_task("sweep", total=1.0, counts="")
        on_wait = _waiting(bar.console)
        while True:
            sw = client.retrying(lambda: client.sweep(sweep_id), on_wait)
            p = sw["progress"]
            bar.update(task, completed=p["fraction"], description=sw["status"],
                       counts=counts_text(sw))
            if p["finished"] == p["total"]:
                break
            time.sleep(poll_s)
    print(f"sweep {sw['id']}: {sw['status']} ({counts_text(sw)})")
    sys.stdout.flush()
    return sw
