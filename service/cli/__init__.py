"""The ``vaelab`` command: ``train`` runs a spec locally (vae_engine.cli); the service adds
``serve``, ``api``, ``worker``, ``migrate``, ``admin-token`` (:mod:`.server`), ``submit``, ``jobs``,
``status``, ``cancel`` (:mod:`.jobs`), ``queue``, ``preempt`` (:mod:`.queue`), ``sweep``
(:mod:`.sweeps`), ``rd`` and ``download`` (:mod:`.results`), ``users``, ``tokens`` and
``login`` (:mod:`.users`). This module assembles the parser and dispatches.

Subcommands import their dependencies lazily so ``vaelab --help`` stays fast (and so the
worker's parent process never imports torch).
"""

from __future__ import annotations

import argparse

from service.cli import datasets, jobs, queue, results, server, sweeps, users, watch


def build_parser() -> argparse.ArgumentParser:
    from vae_engine import cli as engine_cli

    parser = argparse.ArgumentParser(prog="vaelab", description="Train and study VAEs.")
    sub = parser.add_subparsers(dest="command", required=True)
    engine_cli.add_train_parser(sub)
    add_service_parsers(sub)
    return parser


def add_service_parsers(sub: argparse._SubParsersAction) -> None:
    # listed one by one: this order is the order of ``vaelab --help``
    server.add_serve(sub)
    server.add_api(sub)
    server.add_worker(sub)
    server.add_migrate(sub)
    server.add_admin_token(sub)
    jobs.add_submit(sub)
    jobs.add_jobs(sub)
    sweeps.add_sweep(sub)
    sweeps.add_sweeps(sub)
    results.add_rd(sub)
    results.add_download(sub)
    jobs.add_status_and_cancel(sub)
    queue.add_queue(sub)
    watch.add_watch(sub)
    jobs.add_rm(sub)
    datasets.add_datasets(sub)
    users.add_users(sub)
    users.add_tokens(sub)
    users.add_login(sub)


def main(argv: list[str] | None = None) -> int:
    from service.cli.common import guard

    parser = build_parser()
    args = parser.parse_args(argv)
    return guard(lambda: args.func(args))

