#!/usr/bin/env python
"""Several training jobs on one GPU: what ``vaelab worker --gpus 0 --jobs-per-gpu N`` buys.

    python bench/gpu_jobs.py [--jobs 1 2 4] [--epochs 20] [--batch 64] [--[no-]cuda-graph]

For each N, N processes (spawned, as a worker's pool children are separate processes) each
train the pythae benchmark's MLP (mnist5k, 784-512-16, Bernoulli, batch 64, per-step metrics)
on the same GPU at once, their steps starting together (a barrier after each one's set-up).
Each reports the wall-clock window of its training steps (from
``MetricSink.start`` to its last step's metrics); the aggregate throughput is all their
examples over the union of the windows. ``speedup`` = aggregate examples/s at N over N = 1.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _spec(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """engine_vs_pythae's benchmark MLP spec, on the GPU, without the final extra metrics."""
    from engine_vs_pythae import engine_spec  # bench/ is this script's folder

    spec = engine_spec(args, seed)
    spec["eval"]["metrics"] = []
    return spec


def _job(args: argparse.Namespace, seed: int, out: Any, barrier: Any) -> None:
    import torch

    from vae_engine import train
    from vae_engine.io import MetricSink

    class Window(MetricSink):
        def start(self, total_steps: int, start_step: int) -> None:
            torch.cuda.synchronize()
            barrier.wait(timeout=args.timeout)  # set-up done everywhere: the steps start together
            self.t0, self.total, self.t1 = time.time(), total_steps, None

        def log(self, step: int, metrics: dict[str, float]) -> None:
            if step == self.total and "loss" in metrics:
                torch.cuda.synchronize()
                self.t1 = time.time()

    sink = Window()
    result = train(_spec(args, seed), sink)
    out.put({"t0": sink.t0, "t1": sink.t1, "steps": result.step,
             "elbo": result.summary["elbo"]})


def run(n: int, args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    barrier = ctx.Barrier(n)
    procs = [ctx.Process(target=_job, args=(args, seed, out, barrier)) for seed in range(n)]
    for p in procs:
        p.start()
    rows = [out.get(timeout=args.timeout) for _ in procs]
    for p in procs:
        p.join()
    window = max(r["t1"] for r in rows) - min(r["t0"] for r in rows)
    per_job = args.epochs * args.n_train  # every epoch sees the whole split (last batch kept)
    assert all(r["steps"] == args.epochs * -(-args.n_train // args.batch) for r in rows)
    return {"jobs": n, "window_s": window, "examples_per_s": n * per_job / window,
            "per_job_examples_per_s": [per_job / (r["t1"] - r["t0"]) for r in rows],
            "elbo": [r["elbo"] for r in rows]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction,
                   help="train.cuda_graph true/false (default: the engine's, on for a GPU)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per N")
    p.set_defaults(latent=16, lr=1e-3, device="cuda", bf16=False)  # what engine_spec reads
    args = p.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        sys.exit("bench/gpu_jobs.py needs a CUDA device")
    from vae_engine.data import load_dataset
    from vae_engine.spec import Mnist5kData

    args.n_train = int(load_dataset(Mnist5kData()).x_train.shape[0])
    rows = [run(n, args) for n in args.jobs]
    base = rows[0]["examples_per_s"] / rows[0]["jobs"]  # per job at the first N
    for r in rows:
        r["speedup_vs_one_job"] = r["examples_per_s"] / base
        print(f"{r['jobs']} job(s): {r['examples_per_s']:.0f} examples/s together "
              f"({r['speedup_vs_one_job']:.2f}x one job)")
    result = {"bench": "gpu_jobs", "gpu": torch.cuda.get_device_name(0),
              "torch_version": torch.__version__, "epochs": args.epochs, "batch": args.batch,
              "cuda_graph": args.cuda_graph, "rows": rows}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
