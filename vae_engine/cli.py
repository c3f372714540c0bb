"""``vaelab train SPEC --out DIR``: run one spec locally with a progress bar.

DIR receives ``metrics.jsonl`` (one object per logged step), ``evals.jsonl`` (every
evaluation summary), ``summary.json`` (the final evaluation), ``checkpoints/``, ``samples/``
and ``recon/``. Errors the user can fix print one line and exit 2; Ctrl-C stops at the next
step with a checkpoint (exit 130), and ``--resume`` continues from it.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from vae_engine.io import JsonlSink, MetricSink, dumps

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def add_train_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a spec locally (no service needed)",
                       description="Train one VAE from a YAML/JSON spec on this machine.")
    p.add_argument("spec", help="path to a TrainSpec YAML or JSON file")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--resume", metavar="CKPT",
                   help="continue from a checkpoint (a file, or 'latest' in --out)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override train.device")
    p.add_argument("--max-steps", type=int, help="override train.max_steps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads (default: the CPUs this process may use that are idle, "
                        "at most one per 0.4 GFLOP of matmul work in a step)")
    p.add_argument("--compile", action="store_true", default=None,
                   help="run the forward/backward through torch.compile (train.compile)")
    p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction,
                   help="capture the whole step as one CUDA graph, or not (train.cuda_graph; "
                        "default: on when training on a GPU)")
    p.set_defaults(func=run_train)
    return p


def _latest_checkpoint(out: Path) -> str | None:
    files = sorted((out / "checkpoints").glob("step_*.safetensors"))
    return str(files[-1]) if files else None


def run_train(args: argparse.Namespace) -> int:
    from vae_engine.clierrors import run_guarded
    from vae_engine.threads import passive_wait

    passive_wait()  # before torch loads: OpenMP threads sleep, not spin, at barriers
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_guarded("vaelab train", lambda: _run_train(args))


def _run_train(args: argparse.Namespace) -> int:
    from vae_engine.errors import VaelabError
    from vae_engine.spec import load_spec, parse_spec

    spec = load_spec(args.spec)
    if args.threads is not None and args.threads < 1:
        raise VaelabError("--threads must be a positive integer")
    if args.max_steps is not None and args.max_steps < 1:
        raise VaelabError("--max-steps must be a positive integer")
    if args.max_steps is not None or args.cuda_graph is not None:
        data = spec.model_dump(mode="json")
        data["train"]["max_steps"] = args.max_steps or data["train"]["max_steps"]
        if args.cuda_graph is not None:
            data["train"]["cuda_graph"] = args.cuda_graph
        spec = parse_spec(data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    resume = args.resume
    if resume == "latest":
        resume = _latest_checkpoint(out)
        if resume is None:
            raise VaelabError(f"--resume latest: no checkpoint in {out / 'checkpoints'}")
    elif resume and not Path(resume).is_file():
        raise VaelabError(f"--resume: no such checkpoint file {resume}")
    return _train(spec, out, resume, args.device, args.quiet, args.threads, args.compile)


def _train(spec: Any, out: Path, resume: str | None, device: str | None, quiet: bool,
           threads: int | None = None, compile: bool | None = None) -> int:
    from vae_engine.io import LocalArtifacts
    from vae_engine.trainer import train

    stop = {"requested": False}

    def on_sigint(signum: int, frame: Any) -> None:
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        print("\nstopping at the next step (Ctrl-C again to abort)...", file=sys.stderr)

    old = signal.signal(signal.SIGINT, on_sigint)
    sink = ProgressSink(out, quiet)
    try:
        result = train(spec, sink, LocalArtifacts(out), resume_from=resume,
                       should_stop=lambda: stop["requested"], device=device,
                       threads=threads, compile=compile)
    finally:
        signal.signal(signal.SIGINT, old)
        sink.close()
    if result.status == "stopped":
        print(f"stopped at step {result.step}; resume with --resume {result.last_checkpoint}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
    s = result.summary
    print(f"done: step {result.step}  ELBO {s['elbo']:.2f}  IWAE(k={s.get('iwae_k')}) "
          f"{s.get('iwae', float('nan')):.2f}  rate {s['rate']:.2f}  distortion "
          f"{s['distortion']:.2f}  active units {s['active_units']}  -> {out}")
    return 0


class ProgressSink(MetricSink):
    """metrics.jsonl + evals.jsonl + a tqdm bar showing the latest loss/rate/distortion."""

    def __init__(self, out: Path, quiet: bool):
        self.metrics = JsonlSink(out / "metrics.jsonl")
        self.evals = (out / "evals.jsonl").open("a")
        self.quiet = quiet
        self.bar = None
        self.last = 0

    def start(self, total_steps: int, start_step: int) -> None:
        if not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, unit="step",
                            dynamic_ncols=True)
        self.last = start_step

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.metrics.log(step, metrics)
        if self.bar is not None and "loss" in metrics:
            self.bar.update(step - self.last)
            self.last = step
            self.bar.set_postfix(loss=f"{metrics['loss']:.1f}", rate=f"{metrics['rate']:.1f}",
                                 dist=f"{metrics['distortion']:.1f}")

    def log_eval(self, step: int, summary: dict[str, Any]) -> None:
        self.evals.write(dumps(summary) + "\n")
        self.evals.flush()
        if self.bar is not None:
            self.bar.write(f"eval @ {step}: ELBO {summary['elbo']:.2f} "
                           f"IWAE {summary.get('iwae', float('nan')):.2f} "
                           f"AU {summary['active_units']}")

    def flush(self) -> None:
        self.metrics.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.metrics.close()
        self.evals.close()
