#!/usr/bin/env python
"""`vaelab train` alone and next to a CPU hog, default threads against ``--threads 1``.

    python bench/contention.py [--epochs 20] [--repeats 2] [--quick]

One fixed small spec (digits, an MLP with one hidden layer of 512, batch 64, an evaluation
only at the end) trained by the real command, ``python -m service.cli train SPEC --out DIR
--quiet``, timed wall clock from start to exit. Two conditions, each with both settings,
interleaved (default, --threads 1, default, ... so that a change of the machine's load hits
both alike), ``--repeats`` times; the median counts:

- ``alone``: nothing else started by this script;
- ``hog``: one busy process per CPU this process may use (a Python loop that never sleeps),
  started before the runs and killed after them.

``ratio`` = default time / the better of the two settings, per condition; the target is
``ratio <= 1.1`` in both (issue 14: before, the default took 3-6x longer under contention).
Prints human-readable lines, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"ratio_max": 1.1}


def spec(epochs: int) -> dict:
    return {
        "name": "contention",
        "dataset": {"name": "digits"},
        "model": {"arch": "mlp", "latent_dim": 8, "hidden": [512]},
        "likelihood": {"kind": "bernoulli"},
        "optim": {"lr": 1e-3, "batch_size": 64},
        "train": {"epochs": epochs, "seed": 0, "log_every": 10, "eval_every_epochs": 0,
                  "checkpoint_every_epochs": 0, "device": "cpu"},
        "eval": {"iwae_k": 2, "max_examples": 100, "n_samples": 16, "metrics": []},
    }


def _spin() -> None:  # pragma: no cover - a hog process
    while True:
        pass


def run_train(spec_path: Path, threads: int | None) -> float:
    with tempfile.TemporaryDirectory(prefix="contention-") as out:
        cmd = [sys.executable, "-m", "service.cli", "train", str(spec_path), "--out", out,
               "--quiet"]
        if threads is not None:
            cmd += ["--threads", str(threads)]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("OMP_NUM_THREADS", None)  # the default must be the engine's own choice
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        took = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"vaelab train failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return took


def picked_threads(spec_path: Path) -> int:
    """The count a fresh ``vaelab train`` of this spec would pick now (vae_engine.threads:
    the usable idle CPUs, then the work-size rule on one step of the spec's model)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("OMP_NUM_THREADS", None)
    code = ("import sys, yaml\n"
            "from vae_engine.spec import parse_spec\n"
            "from vae_engine.threads import pick_threads, step_flops\n"
            "from vae_engine.trainer import setup\n"
            "spec = parse_spec(yaml.safe_load(open(sys.argv[1])))\n"
            "run = setup(spec)\n"
            "x = run.data.x_train[: spec.optim.batch_size]\n"
            "print(pick_threads(work=step_flops(run.model, x)))\n")
    out = subprocess.run([sys.executable, "-c", code, str(spec_path)], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def condition(spec_path: Path, repeats: int) -> dict:
    times: dict[str, list[float]] = {"default": [], "threads_1": []}
    picked = picked_threads(spec_path)
    for _ in range(repeats):
        times["default"].append(run_train(spec_path, None))
        times["threads_1"].append(run_train(spec_path, 1))
    med = {k: statistics.median(v) for k, v in times.items()}
    best = min(med.values())
    return {"default_s": round(med["default"], 2), "threads_1_s": round(med["threads_1"], 2),
            "runs": {k: [round(x, 2) for x in v] for k, v in times.items()},
            "ratio": round(med["default"] / best, 3), "default_threads": picked}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="8 epochs, one repeat")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats = 8, 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with tempfile.TemporaryDirectory(prefix="contention-spec-") as tmp:
        spec_path = Path(tmp) / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(spec(args.epochs)))
        alone = condition(spec_path, args.repeats)
        print(f"alone: default ({alone['default_threads']} threads) {alone['default_s']} s, "
              f"--threads 1 {alone['threads_1_s']} s, ratio {alone['ratio']}", flush=True)
        hogs = [mp.Process(target=_spin, daemon=True) for _ in range(cpus)]
        for h in hogs:
            h.start()
        try:
            time.sleep(0.5)
            hog = condition(spec_path, args.repeats)
        finally:
            for h in hogs:
                h.kill()
                h.join()
        print(f"next to {cpus} busy processes: default ({hog['default_threads']} threads) "
              f"{hog['default_s']} s, --threads 1 "
              f"{hog['threads_1_s']} s, ratio {hog['ratio']}", flush=True)
    worst = max(alone["ratio"], hog["ratio"])
    out = {
        "bench": "contention", "epochs": args.epochs, "repeats": args.repeats, "cpus": cpus,
        "load_average": round(os.getloadavg()[0], 2), "alone": alone, "hog": hog,
        "ratio": worst, "targets": TARGETS, "met": worst <= TARGETS["ratio_max"],
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
