"""The server-side commands: ``serve`` (the embedded default), ``api``, ``worker``,
``migrate`` and ``admin-token`` (offline recovery of an admin's access). They work on the
configured database directly (VAELAB_DATABASE_URL, else <VAELAB_DATA_DIR>/vaelab.db)."""

from __future__ import annotations

import argparse
import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.core.config import Settings


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


def add_admin_token(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "admin-token", help="On the server: a fresh admin token, written straight into the "
        "database (no API, no token needed): the way back in when every admin token is lost "
        "or revoked.",
        description="Run where the server's settings are (VAELAB_DATABASE_URL, or the "
        "embedded server's --data-dir): prints a new token of an admin once. --user NAME "
        "that admin (a new name creates an admin; a disabled admin is enabled again); "
        "default the only admin.")
    p.add_argument("--user", help="The admin (default: the only one).")
    p.add_argument("--expires-days", type=positive_float, default=None, metavar="D",
                   help="Expire after D days (default never).")
    p.add_argument("--data-dir", default=None,
                   help="The embedded server's data folder (default VAELAB_DATA_DIR, else "
                        "./vaelab-data); its database unless VAELAB_DATABASE_URL is set.")
    p.add_argument("--save", action="store_true",
                   help="Also write the token to <data dir>/admin.token (0600), where the CLI "
                        "on this machine finds it.")
    p.set_defaults(func=cmd_admin_token)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of days, got {text!r}")
    return value


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


def cmd_admin_token(args: argparse.Namespace) -> int:
    from service.core.config import Settings
    from service.core.users import RecoveryRefused, recover_admin, write_secret
    from vae_engine.errors import VaelabError

    s = Settings(data_dir=args.data_dir) if args.data_dir else Settings()
    _require_database(s, "--data-dir" if args.data_dir else None)
    try:
        got = recover_admin(s, args.user, args.expires_days)
    except RecoveryRefused as exc:
        raise VaelabError(f"vaelab admin-token: {exc}") from None
    what = "created admin" if got.created else "admin"
    print(f"{what} {got.name}" + (" (enabled again)" if got.enabled else "")
          + f"; database {_safe_url(s.db_url)}")
    print(f"token {got.token_id} for {got.name}"
          + (f", expires {got.expires_at.isoformat(timespec='seconds')}"
             if got.expires_at else "")
          + f":\n  {got.secret}\n(shown this once: only its hash is kept)")
    if args.save:
        write_secret(s.admin_token_file, got.secret)
        print(f"written to {s.admin_token_file} (the CLI on this machine uses it)")
    return 0


def _require_database(s: Settings, option: str | None) -> None:
    """A one-line VaelabError naming the setting unless ``s``' database is there, reachable
    and migrated (an absent SQLite file is not created)."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    from service.db import migrate
    from vae_engine.errors import VaelabError

    url = s.db_url
    where = option or ("VAELAB_DATABASE_URL" if s.database_url else
                       "VAELAB_DATA_DIR / --data-dir")
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        raise VaelabError(f"vaelab admin-token: no database at {parsed.database} (set "
                          f"{where} to the server's)")
    try:
        migrate.check_reachable(url)
    except migrate.NotMigratedError as exc:
        raise VaelabError(f"vaelab admin-token: {exc}") from None
    except migrate.DatabaseUnreachable as exc:
        raise VaelabError(f"vaelab admin-token: cannot open the database {_safe_url(url)} "
                          f"({where}): {exc}") from None
