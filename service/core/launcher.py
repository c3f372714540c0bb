"""Start Celery worker processes: ``vaelab worker --cpu`` / ``--gpus 0,1`` / ``--queues``, and
the worker subprocess of ``vaelab serve``.

One worker process per GPU, each started with ``CUDA_VISIBLE_DEVICES`` set to its GPU, so
each sees only that device. Nothing here imports torch: CUDA is initialised only inside
the prefork child that runs a job, never in a parent before it forks.

The consumer is named, never imported (:data:`WORKER_APP`, given to Celery's ``-A``): the
service does not import the worker package, the worker depends on the service.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout holding service/ and worker/
WORKER_APP = "worker.celery_app"  # Celery finds its ``app`` when the worker starts


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """For ``preexec_fn``: the child gets ``sig`` when its parent dies (Linux), so a killed
    ``vaelab serve`` or ``vaelab worker --gpus`` never leaves workers behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def celery_worker_args(queues: list[str], hostname: str, concurrency: int = 1,
                       loglevel: str = "INFO") -> list[str]:
    return [
        "worker", "-Q", ",".join(queues), "-n", hostname, "-c", str(concurrency),
        "--pool", "prefork", "-l", loglevel,
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(extra or {})
    return env


def run_in_process(queues: list[str], hostname: str, concurrency: int, loglevel: str) -> int:
    """Become the Celery worker (the CPU worker, the embedded server's worker): the ``celery``
    command run in this process, as ``app.worker_main`` would, with the app given by name."""
    from celery.bin.celery import celery
    from click.exceptions import Exit

    argv = ["-A", WORKER_APP, *celery_worker_args(queues, hostname, concurrency, loglevel)]
    try:
        celery.main(args=argv, prog_name="celery", standalone_mode=False)
    except Exit as exc:
        return exc.exit_code
    return 0


def parse_gpus(spec: str) -> list[str]:
    if spec == "all":
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
        gpus = [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU")]
        if not gpus:
            raise SystemExit("vaelab worker: --gpus all found no GPU (nvidia-smi -L)")
        return gpus
    gpus = [g.strip() for g in spec.split(",") if g.strip()]
    if not gpus:
        raise SystemExit("vaelab worker: --gpus needs a list like 0,1 or 'all'")
    return gpus


def gpu_worker_commands(gpus: list[str], queue: str, loglevel: str,
                        jobs_per_gpu: int = 1) -> list[tuple[list[str], dict[str, str]]]:
    """(command line, environment) of each GPU's worker process."""
    host = socket.gethostname()
    return [([sys.executable, "-m", "celery", "-A", WORKER_APP,
              *celery_worker_args([queue], f"gpu{gpu}@{host}", jobs_per_gpu, loglevel)],
             child_env({"CUDA_VISIBLE_DEVICES": gpu, "VAELAB_WORKER_GPU": gpu}))
            for gpu in gpus]


def run_gpu_workers(gpus: list[str], queue: str, loglevel: str, jobs_per_gpu: int = 1) -> int:
    """One Celery worker process per GPU, running ``jobs_per_gpu`` jobs at once (prefork
    children sharing that GPU); forwards SIGINT/SIGTERM; exits when any exits."""
    procs = [subprocess.Popen(cmd, env=env, preexec_fn=die_with_parent)
             for cmd, env in gpu_worker_commands(gpus, queue, loglevel, jobs_per_gpu)]

    def forward(signum, _frame) -> None:  # noqa: ANN001
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    rc = 0
    try:
        while procs:
            pid, status = os.wait()
            done = [p for p in procs if p.pid == pid]
            if not done:
                continue
            procs.remove(done[0])
            rc = rc or os.waitstatus_to_exitcode(status)
            forward(signal.SIGTERM, None)  # one worker gone: stop the rest, let the
            # orchestrator restart the set
    except ChildProcessError:
        pass
    return rc
