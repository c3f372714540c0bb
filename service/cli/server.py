"""The server-side commands: ``serve`` (the embedded default), ``api``, ``worker`` and
``migrate``."""

from __future__ import annotations

import argparse
import os
import socket


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a bad value exits 2 naming the option)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="Run the API and a worker with no configuration "
                       "(SQLite, a server-less broker, ./vaelab-data/).")
    p.add_argument("--host", default="127.0.0.1", help="Listen address (default 127.0.0.1).")
    p.add_argument("--port", type=int, default=8000, help="Listen port (default 8000).")
    p.add_argument("--data-dir", default=None, help="Default ./vaelab-data (VAELAB_DATA_DIR).")
    p.add_argument("--no-worker", action="store_true", help="Run the API only.")
    p.set_defaults(func=cmd_serve)


def add_api(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("api", help="Run the API only (lab deployment; migrate first).")
    p.add_argument("--host", default="127.0.0.1", help="Listen address (default 127.0.0.1).")
    p.add_argument("--port", type=int, default=8000, help="Listen port (default 8000).")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes.")
    p.set_defaults(func=cmd_api)


def add_worker(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="Run Celery workers: --cpu, or one per GPU with --gpus.")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--gpus", help="Comma-separated GPU indices (one worker each) or 'all'.")
    g.add_argument("--cpu", action="store_true", help="A CPU worker on the cpu queue.")
    g.add_argument("--queues", help="Consume these queues in one worker (comma-separated).")
    p.add_argument("--concurrency", type=int, default=1, help="Jobs at once (--cpu/--queues).")
    p.add_argument("--jobs-per-gpu", type=positive_int, default=1, metavar="N",
                   help="With --gpus: N jobs at once on each GPU (small models leave most of a "
                        "GPU idle; default 1).")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="CPU threads of each training process (VAELAB_WORKER_THREADS; default: "
                        "the usable CPUs that are idle, at most one per 0.4 GFLOP of matmul work "
                        "in a training step).")
    p.add_argument("--loglevel", default="INFO",
                   help="Celery log level: DEBUG, INFO, WARNING, ERROR (default INFO).")
    p.set_defaults(func=cmd_worker)


def add_migrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate", help="Bring the database up to date (alembic upgrade head).")
    p.add_argument("--revision", default="head",
                   help="The Alembic revision to upgrade to (default head).")
    p.set_defaults(func=cmd_migrate)


def cmd_serve(args: argparse.Namespace) -> int:
    from service.serve import serve

    return serve(args.host, args.port, args.data_dir, with_worker=not args.no_worker)


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    _first_admin()
    uvicorn.run("service.main:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers)
    return 0


def _first_admin() -> None:
    """With no user yet (and a migrated database), the first admin and its token file."""
    from service.core.config import get_settings
    from service.core.users import ensure_local_admin
    from service.db import migrate

    s = get_settings()
    try:
        migrate.check(s.db_url)
    except Exception:  # noqa: BLE001 - not migrated or unreachable: the API says so itself
        return
    s.ensure_dirs()
    name = ensure_local_admin(s)
    if name:
        print(f"vaelab: created the admin user {name}; its token is in "
              f"{s.admin_token_file}", flush=True)


def cmd_worker(args: argparse.Namespace) -> int:

    from service.core import launcher
    from service.core.config import get_settings

    if args.threads is not None:  # read by each worker child (worker.tasks._child_init)
        os.environ["VAELAB_WORKER_THREADS"] = str(args.threads)
        get_settings.cache_clear()
    s = get_settings()
    host = socket.gethostname()
    if args.gpus:
        return launcher.run_gpu_workers(launcher.parse_gpus(args.gpus), s.gpu_queue,
                                        args.loglevel, args.jobs_per_gpu)
    if args.cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # a CPU worker never takes a GPU
        return launcher.run_in_process([s.cpu_queue], f"cpu.{os.getpid()}@{host}",
                                       args.concurrency, args.loglevel)
    # the pid: each worker process on a host has its own name, so its own queue and slots
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    return launcher.run_in_process(queues, f"{'+'.join(queues)}.{os.getpid()}@{host}",
                                   args.concurrency, args.loglevel)


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
