"""The same spec via ``vaelab train`` and via the API + worker (embedded ``vaelab serve``).

    python bench/service_overhead.py [--epochs 10]

Prints both wall times and ``overhead_ratio`` = (API submit → succeeded) / (vaelab train).
Target: overhead_ratio <= 1.05 plus at most 3 s of fixed start-up (the worker's first
torch import and the broker's polling), i.e. api_s <= 1.05 * train_s + 3.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def spec(epochs: int) -> dict:
    return {"name": "overhead", "dataset": {"name": "digits"},
            "model": {"arch": "mlp", "latent_dim": 8, "hidden": [256]},
            "likelihood": {"kind": "bernoulli"}, "optim": {"batch_size": 64},
            "train": {"epochs": epochs, "log_every": 5, "eval_every_epochs": 1,
                      "checkpoint_every_epochs": 1},
            "eval": {"iwae_k": 50, "max_examples": 300}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="3 epochs")
    args = ap.parse_args()
    if args.quick:
        args.epochs = 3
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for k in ("VAELAB_DATABASE_URL", "VAELAB_BROKER_URL", "VAELAB_ARTIFACT_ROOT"):
        env.pop(k, None)
    with tempfile.TemporaryDirectory() as tmp:
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(spec(args.epochs)))
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "service.cli", "train", str(spec_file), "--out",
                        str(Path(tmp) / "run"), "--quiet"], env=env, check=True, cwd=tmp)
        train_s = time.perf_counter() - t0

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        serve = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--data-dir",
             str(Path(tmp) / "data")], env=env, cwd=tmp, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            time.sleep(3)  # let the worker finish starting: serve's start-up is not the job's
            token = (Path(tmp) / "data" / "admin.token").read_text().strip()
            auth = {"Authorization": f"Bearer {token}"}  # the first admin serve created
            t0 = time.perf_counter()
            jid = httpx.post(f"{url}/api/v1/jobs", json={"spec": spec(args.epochs),
                                                         "resources": {"device": "cpu"}},
                             timeout=10, headers=auth).json()["id"]
            while True:
                job = httpx.get(f"{url}/api/v1/jobs/{jid}", timeout=10, headers=auth).json()
                if job["status"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.1)
            api_s = time.perf_counter() - t0
        finally:
            serve.send_signal(signal.SIGINT)
            serve.wait(timeout=60)
    assert job["status"] == "succeeded", job
    print(f"train_s={train_s:.2f}  api_s={api_s:.2f}")
    print(f"overhead_ratio={api_s / train_s:.3f}  fixed_allowance_ok="
          f"{api_s <= 1.05 * train_s + 3.0}  (target: api_s <= 1.05 * train_s + 3 s)")
    print(json.dumps({"bench": "service_overhead", "epochs": args.epochs,
                      "train_s": round(train_s, 2), "api_s": round(api_s, 2),
                      "overhead_ratio": round(api_s / train_s, 3),
                      "targets": {"api_s_max": "1.05 * train_s + 3"},
                      "met": api_s <= 1.05 * train_s + 3.0}))


if __name__ == "__main__":
    main()
