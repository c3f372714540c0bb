#!/usr/bin/env python
"""Benchmark vae_engine against pythae (github.com/clementchadebec/benchmark_VAE).

    pip install -e '.[bench]'
    python bench/engine_vs_pythae.py [--epochs 3 --latent 16 --batch 64 --iwae-k 200 \
        --iwae-examples 100 --repeats 2 --threads N --device cpu|cuda]

Both sides train pythae's default VAE on the mnist5k split (4,000 train / 1,000 test, grey
levels in [0, 1]): encoder 784-512(ReLU)-{mu, logvar}(z), decoder z-512(ReLU)-784, Bernoulli
likelihood (pythae: ``reconstruction_loss="bce"``, a sigmoid output and BCE summed over pixels,
averaged over the batch; vae_engine: logits and BCE-with-logits, the same objective), Adam
(lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay, no scheduler), the same batch size
and epochs (the last partial batch of each epoch is kept on both sides), no evaluation during
training, the same seed per repeat and ``torch.set_num_threads`` shared. Runs alternate
pythae, ours, pythae, ours, ... Repeat r uses seed ``--seed + r`` on both sides.

Measured:

- Throughput: training examples seen / wall time of the training epochs. pythae: from the
  start of the first ``BaseTrainer.train_step`` to the end of the last one (its setup, sanity
  check, per-run directory and the final ``save_model`` are outside). vae_engine: from
  ``MetricSink.start`` (called after setup) to the per-step ``log`` of the last step (the final
  evaluation and checkpoint come after). vae_engine runs with ``log_every: 1`` (per-step
  metrics on). pythae's tqdm progress bar is replaced by a no-op unless ``--pythae-progress``
  (that only removes work from pythae). ``throughput_ratio`` = ours / pythae per repeat (the
  two runs are back to back), median over the repeats. Also given: a steady-state ratio that
  leaves out the first clocked step on both sides (pythae: step 1; vae_engine, whose per-step
  metrics reach the sink in batches of 32 steps: the first batch), and examples per process
  CPU-second (less disturbed by other load on a shared machine; use ``--threads 1`` there:
  with several torch threads on a loaded box the wall-clock figures swing by several x).
- ELBO: one estimator written here (``test_elbo``), fed ``encode(x) -> (mu, logvar)`` and
  ``decode(z) -> logits`` of each trained model (for pythae, the pre-sigmoid output of its
  decoder): analytic KL, Bernoulli log-likelihood via BCE-with-logits averaged over
  ``--elbo-samples`` draws of the same noise on both sides, nats per example on the whole
  test split. ``elbo_gap_nats`` = ours - pythae, averaged over the repeats. pythae's trained
  model is the one its trainer keeps (``_best_model``: best training loss, i.e. the last epoch
  whenever the epoch loss decreases) - the one it saves as ``final_model``.
- IWAE: pythae's ``VAE.get_nll(x_test[:n], n_samples=k, batch_size=k)`` (it loops over the
  examples in Python and re-encodes every importance sample; ``batch_size=k`` gives it its
  fewest passes; run under ``torch.no_grad()``, which it does not do itself) against
  ``vae_engine.evaluate.iwae_bound(model, likelihood, x_test[:n], k)`` (encode once, decode all
  k samples in chunks). Each is timed ``--iwae-timings`` times, alternated, and the fastest
  counts; ``iwae_speedup`` = pythae time / our time per repeat, median over the repeats.
  As a check that both compute the same quantity, ``iwae_bound`` is also run on pythae's
  trained weights (``iwae_engine_estimator_on_pythae_model``): it should match pythae's value
  to within Monte Carlo noise.
- Roofline (``--device cpu``; bench/roofline.py): before the runs, the peak of the issue's
  yardstick product (batch x 784 by 784 x 512) in the dtype of the engine's matmuls, and the
  step's 14 matrix products and the engine's Adam update timed one by one.
  ``roofline_fraction`` = the engine's throughput times its matmul FLOPs per example over
  that peak (target >= 0.35); ``throughput_ratio_ceiling`` = pythae's step time over the
  sum of those timings: the ratio a step of nothing but its matmuls and Adam would reach.
  After each repeat's two trainings, the same number of steps written out by hand
  (roofline.BareStep: no autograd, no modules, results in buffers made once; the loss, its
  gradients, the gradient norm and the same Adam update, float32):
  ``throughput_ratio_bare_ceiling`` = its examples/s over pythae's, the ratio a framework
  that cost nothing would reach; ``engine_vs_bare`` = the engine's over its (both the
  median of the per-repeat ratios).

Prints human-readable lines, then a final line holding one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from vae_engine.io import LocalArtifacts, MetricSink  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import roofline  # noqa: E402

TARGETS = {"throughput_ratio_min": 2.5, "abs_elbo_gap_nats_max": 2.0, "iwae_speedup_min": 1.8,
           "roofline_fraction_min": roofline.ROOFLINE_FRACTION_MIN}
HIDDEN = 512  # pythae's default MLP: 784-512-z

Encode = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
Decode = Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- shared pieces


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def batch_sizes(n: int, batch: int, epochs: int, drop_last: bool = False) -> list[int]:
    """Examples in each optimizer step of ``epochs`` passes over n examples."""
    full, rest = divmod(n, batch)
    one = [batch] * full + ([rest] if rest and not drop_last else [])
    return one * epochs


def throughput(
    t_start: float, step_ends: list[float], sizes: list[int], cpu_s: float
) -> dict[str, float]:
    """Examples/s over the whole window and over the steps after the first clocked one
    (steady state).

    vae_engine reads its metrics from the device in batches (every 32 steps: the first read
    logs steps 1..32 at one instant), so its first clock time is the end of step 32, not of
    step 1: the steady window starts at the last step that shares the first clock time,
    and counts only the examples after it (for pythae, clocked every step, that is step 1).

    ``cpu_s`` is the process CPU time spent in the window (all threads): on a shared machine
    examples per CPU-second is less disturbed by other load than examples per wall second.
    """
    if len(step_ends) != len(sizes):
        raise RuntimeError(f"recorded {len(step_ends)} step times for {len(sizes)} steps")
    wall = step_ends[-1] - t_start
    out = {"wall_s": wall, "examples": sum(sizes), "examples_per_s": sum(sizes) / wall,
           "cpu_s": cpu_s, "examples_per_cpu_s": sum(sizes) / cpu_s}
    if len(step_ends) > 1:
        first = max(i for i, t in enumerate(step_ends) if t == step_ends[0])
        if first + 1 < len(step_ends):
            out["steady_examples_per_s"] = (sum(sizes[first + 1:])
                                            / (step_ends[-1] - step_ends[first]))
    return out


@torch.no_grad()
def test_elbo(
    encode: Encode, decode_logits: Decode, x: torch.Tensor, n_samples: int, seed: int,
    batch: int = 500,
) -> dict[str, float]:
    """ELBO (nats/example) = E_q[log Bernoulli(x | logits(z))] - KL(q(z|x) || N(0, I)).

    The expectation is averaged over ``n_samples`` reparameterised draws whose noise comes
    from a generator seeded with ``seed``, so two models see the same eps.
    """
    gen = torch.Generator(device=x.device).manual_seed(seed)
    rec_sum, kl_sum = 0.0, 0.0
    for xb in x.split(batch):
        flat = xb.flatten(1)  # (b, D)
        mu, logvar = encode(xb)  # (b, M) each
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)  # (b,)
        std = torch.exp(0.5 * logvar)
        nll = torch.zeros(flat.shape[0], device=x.device)
        for _ in range(n_samples):
            eps = torch.randn(mu.shape, generator=gen, device=x.device, dtype=mu.dtype)
            logits = decode_logits(mu + std * eps).reshape(flat.shape)
            nll += F.binary_cross_entropy_with_logits(logits, flat, reduction="none").sum(1)
        rec_sum += float((nll / n_samples).sum())
        kl_sum += float(kl.sum())
    n = x.shape[0]
    return {"elbo": -(rec_sum + kl_sum) / n, "distortion": rec_sum / n, "rate": kl_sum / n}


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def warm_up(device: str, n_in: int, latent: int, batch: int, seconds: float = 1.0) -> None:
    """Untimed Adam steps on a same-shaped MLP: thread pools, kernels and allocator warm."""
    g = torch.Generator().manual_seed(12345)
    enc = torch.nn.Sequential(torch.nn.Linear(n_in, HIDDEN), torch.nn.ReLU(),
                              torch.nn.Linear(HIDDEN, 2 * latent)).to(device)
    dec = torch.nn.Sequential(torch.nn.Linear(latent, HIDDEN), torch.nn.ReLU(),
                              torch.nn.Linear(HIDDEN, n_in)).to(device)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    x = torch.rand(batch, n_in, generator=g).to(device)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        mu, logvar = enc(x).chunk(2, 1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        loss = F.binary_cross_entropy_with_logits(dec(z), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        float(loss.detach())


# --------------------------------------------------------------------------- pythae side


def quiet_pythae(progress: bool, verbose: bool) -> None:
    """Silence pythae's INFO console loggers; swap its tqdm progress bar for a no-op."""
    import pythae.trainers.base_trainer.base_trainer as bt
    from pythae.trainers.training_callbacks import TrainingCallback

    if not verbose:
        for name in list(logging.root.manager.loggerDict):
            if name.startswith("pythae"):
                logging.getLogger(name).setLevel(logging.WARNING)
    if not progress:
        class _NoProgressBar(TrainingCallback):
            pass

        bt.ProgressBarCallback = _NoProgressBar  # looked up by BaseTrainer._setup_callbacks


def pythae_logits(model) -> Decode:
    """The pre-sigmoid output of pythae's default MLP decoder (Linear-ReLU, Linear-Sigmoid)."""
    from pythae.models.nn.default_architectures import Decoder_AE_MLP

    dec = model.decoder
    if not isinstance(dec, Decoder_AE_MLP):
        raise TypeError(f"expected pythae's default Decoder_AE_MLP, got {type(dec).__name__}")
    hidden, last = dec.layers[0], dec.layers[1]
    linear, act = last[0], last[1]
    if not isinstance(act, torch.nn.Sigmoid):
        raise TypeError("pythae's decoder no longer ends in a Sigmoid")
    return lambda z: linear(hidden(z))


def pythae_encode(model) -> Encode:
    def encode(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = model.encoder(x)
        return out.embedding, out.log_covariance

    return encode


def train_pythae(x_train: torch.Tensor, args, seed: int, out_root: str) -> dict[str, Any]:
    from pythae.data.preprocessors import DataProcessor
    from pythae.models import VAE, VAEConfig
    from pythae.trainers import BaseTrainer, BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    step_ends: list[float] = []
    cpu_ends: list[float] = []
    device = args.device

    class _StepClock(TrainingCallback):
        def on_train_step_end(self, training_config, **kwargs):
            # pythae has already called loss.item() (a device sync) for this step.
            step_ends.append(time.perf_counter())
            cpu_ends.append(time.process_time())

    torch.manual_seed(seed)  # pythae seeds only at train(); the weights are drawn here
    config = VAEConfig(
        input_dim=tuple(x_train.shape[1:]), latent_dim=args.latent, reconstruction_loss="bce"
    )
    model = VAE(config)
    out_dir = tempfile.mkdtemp(prefix="pythae-run-", dir=out_root)
    tcfg = BaseTrainerConfig(
        output_dir=out_dir, per_device_train_batch_size=args.batch, num_epochs=args.epochs,
        learning_rate=args.lr, optimizer_cls="Adam", optimizer_params=None, scheduler_cls=None,
        steps_saving=None, steps_predict=None, seed=seed, no_cuda=(device != "cuda"),
    )
    dataset = DataProcessor.to_dataset(x_train.cpu())  # pythae moves each batch to the device
    trainer = BaseTrainer(model, dataset, eval_dataset=None, training_config=tcfg,
                          callbacks=[_StepClock()])
    starts: list[float] = []
    inner = trainer.train_step

    def timed_train_step(epoch: int):
        if not starts:
            sync(device)
            starts.extend((time.perf_counter(), time.process_time()))
        return inner(epoch)

    trainer.train_step = timed_train_step
    t0 = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - t0
    shutil.rmtree(out_dir, ignore_errors=True)
    fig = throughput(starts[0], step_ends, batch_sizes(len(x_train), args.batch, args.epochs),
                     cpu_ends[-1] - starts[1])
    fig["train_call_s"] = total
    trained = trainer._best_model  # what pythae saves as final_model
    trained.eval()
    return {"model": trained, **fig}


def pythae_iwae(model, x: torch.Tensor, k: int, batch: int, seed: int, device: str):
    torch.manual_seed(seed)
    sync(device)
    t = time.perf_counter()
    with torch.no_grad():
        value = float(model.get_nll(x, n_samples=k, batch_size=batch))
    sync(device)
    return value, time.perf_counter() - t


# --------------------------------------------------------------------------- vae_engine side


class TimingSink(MetricSink):
    """Wall clock at ``start`` and at each per-step ``log`` (evaluation logs are ignored);
    the rows of one read of the device share the clock time of its first row."""

    def __init__(self, device: str):
        self.device = device
        self.t_start: float | None = None
        self.cpu_start = self.cpu_end = 0.0
        self.total_steps = 0
        self.step_ends: list[float] = []
        self.reported_eps: list[float] = []

    def start(self, total_steps: int, start_step: int) -> None:
        sync(self.device)
        self.total_steps = total_steps
        self.t_start = time.perf_counter()
        self.cpu_start = time.process_time()

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if "examples_per_s" not in metrics:  # eval/<key> scalars
            return
        eps = float(metrics["examples_per_s"])
        if step == self.total_steps:
            sync(self.device)
            now = time.perf_counter()
        elif self.reported_eps and eps == self.reported_eps[-1]:
            # the same read of the device as the row before (the engine gives every row of
            # one read the same examples_per_s): those steps ended by that row's clock time
            now = self.step_ends[-1]
        else:
            now = time.perf_counter()
        self.step_ends.append(now)
        self.cpu_end = time.process_time()
        self.reported_eps.append(eps)


def engine_spec(args, seed: int) -> dict[str, Any]:
    return {
        "name": "bench-vs-pythae",
        "dataset": {"name": "mnist5k"},
        "model": {"arch": "mlp", "latent_dim": args.latent, "hidden": [HIDDEN],
                  "activation": "relu"},
        "likelihood": {"kind": "bernoulli"},
        "kl": {"schedule": {"kind": "constant", "beta": 1.0}, "reduction": "sum"},
        "optim": {"lr": args.lr, "batch_size": args.batch, "betas": [0.9, 0.999],
                  "weight_decay": 0.0},
        "train": {"epochs": args.epochs, "seed": seed, "log_every": 1,
                  "eval_every_epochs": 0, "checkpoint_every_epochs": 0,
                  "device": args.device, "cuda_graph": args.cuda_graph, "bf16": args.bf16},
        # Only the final evaluation runs (after the timed window); keep it cheap.
        "eval": {"iwae_k": 1, "max_examples": 100, "n_samples": 16},
    }


def train_engine(n_train: int, args, seed: int) -> dict[str, Any]:
    from vae_engine import load_checkpoint, train
    from vae_engine.spec import parse_spec

    spec = parse_spec(engine_spec(args, seed))
    sink = TimingSink(args.device)
    with tempfile.TemporaryDirectory(prefix="engine-run-") as tmp:
        t0 = time.perf_counter()
        result = train(spec, sink, LocalArtifacts(tmp), threads=args.threads or None,
                       compile=args.compile or None)
        total = time.perf_counter() - t0
        model = getattr(result, "model", None)
        likelihood = getattr(result, "likelihood", None)
        if model is None or likelihood is None:
            path = getattr(result, "last_checkpoint", None) or _last_checkpoint(tmp)
            loaded = load_checkpoint(path, device=args.device)
            model, likelihood = loaded.model, loaded.likelihood
    if sink.t_start is None:
        raise RuntimeError("vae_engine.train never called MetricSink.start")
    steps = sink.total_steps
    drop_last = steps == args.epochs * (n_train // args.batch) and n_train % args.batch != 0
    sizes = batch_sizes(n_train, args.batch, args.epochs, drop_last)
    fig = throughput(sink.t_start, sink.step_ends, sizes, sink.cpu_end - sink.cpu_start)
    fig["train_call_s"] = total
    # The engine's own per-step figure, time-weighted (sum of examples / sum of step times).
    fig["sink_examples_per_s"] = sum(sizes) / sum(
        b / e for b, e in zip(sizes, sink.reported_eps, strict=True))
    fig["drop_last"] = drop_last
    model.eval()
    likelihood.eval()
    return {"model": model, "likelihood": likelihood, **fig}


def _last_checkpoint(root: str) -> str:
    found = sorted(Path(root).glob("checkpoints/*.safetensors"))
    if not found:
        raise RuntimeError(f"vae_engine.train wrote no checkpoint under {root}")
    return str(found[-1])


def engine_iwae(model, likelihood, x: torch.Tensor, k: int, chunk: int, seed: int, device: str):
    from vae_engine.evaluate import iwae_bound

    gen = torch.Generator(device=device).manual_seed(seed)
    sync(device)
    t = time.perf_counter()
    with torch.no_grad():
        ll = iwae_bound(model, likelihood, x, k, chunk=chunk, generator=gen)
    sync(device)
    return float(ll.mean()), time.perf_counter() - t


def pythae_as_engine_model(pmodel, data_shape: tuple[int, ...]):
    """pythae's trained nets behind vae_engine's VAEModel interface (for the estimator check)."""
    from vae_engine.models.base import VAEModel

    encode, logits = pythae_encode(pmodel), pythae_logits(pmodel)

    class _Wrapped(VAEModel):
        def __init__(self) -> None:
            super().__init__()
            self.inner = pmodel
            self.latent_dim = pmodel.latent_dim

        def encode(self, x):
            return encode(x)

        def decode(self, z):
            return logits(z).view(z.shape[0], *data_shape)

    return _Wrapped().eval()


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--latent", type=int, default=16)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--iwae-k", type=int, default=200)
    p.add_argument("--iwae-examples", type=int, default=100)
    p.add_argument("--iwae-chunk", type=int, default=0, help="vae_engine iwae chunk (0 = auto)")
    p.add_argument("--pythae-nll-batch", type=int, default=0,
                   help="batch_size for pythae's get_nll (0 = k); must divide k")
    p.add_argument("--iwae-timings", type=int, default=3,
                   help="timed IWAE runs per side and repeat, alternated; the fastest counts")
    p.add_argument("--elbo-samples", type=int, default=10)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--quick", action="store_true",
                   help="one repeat, IWAE k=20 timed once (for make bench)")
    p.add_argument("--compile", action="store_true",
                   help="vae_engine with train.compile (torch.compile of the forward)")
    p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction,
                   help="vae_engine with train.cuda_graph true/false (the whole step as one "
                        "CUDA graph; default: the engine's, on for --device cuda)")
    p.add_argument("--bf16", action="store_true",
                   help="vae_engine with train.bf16 (the forward under bfloat16 autocast)")
    p.add_argument("--pythae-output-dir", default=None,
                   help="where pythae writes its run folders (default: a temp dir, removed)")
    p.add_argument("--pythae-progress", action="store_true",
                   help="keep pythae's tqdm progress bar (default: replaced by a no-op)")
    p.add_argument("--verbose", action="store_true", help="keep pythae's and vaelab's INFO logs")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.iwae_k, args.iwae_timings = 1, 20, 1
    if min(args.repeats, args.epochs, args.iwae_k, args.iwae_examples, args.iwae_timings,
           args.elbo_samples) < 1:
        p.error("--repeats, --epochs, --iwae-k, --iwae-examples, --iwae-timings and "
                "--elbo-samples must be >= 1")
    if args.pythae_nll_batch == 0:
        args.pythae_nll_batch = args.iwae_k
    if args.pythae_nll_batch > args.iwae_k or args.iwae_k % args.pythae_nll_batch:
        # get_nll draws batch_size samples when k <= batch_size and floor(k / batch_size)
        # batches otherwise, so anything but a divisor of k changes the sample count.
        p.error("--pythae-nll-batch must divide --iwae-k")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device visible")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if not args.verbose:
        logging.getLogger("vae_engine").setLevel(logging.ERROR)  # e.g. the non-binary warning
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    try:
        import pythae  # noqa: F401
    except ImportError:
        sys.exit("pythae is not installed: pip install -e '.[bench]'")
    quiet_pythae(args.pythae_progress, args.verbose)

    from vae_engine.data import load_dataset
    from vae_engine.spec import Mnist5kData

    bundle = load_dataset(Mnist5kData())
    x_train = bundle.x_train.contiguous()
    x_test = bundle.x_test.to(args.device)
    x_iwae = x_test[: args.iwae_examples]
    data_shape = tuple(x_train.shape[1:])
    k, n_iwae = args.iwae_k, x_iwae.shape[0]

    print(f"torch {torch.__version__}, pythae {_dist_version('pythae')}, "
          f"device {args.device}, threads {threads}, python {platform.python_version()}, "
          f"load average {_load_average()}")
    print(f"mnist5k: train {tuple(x_train.shape)}, test {tuple(x_test.shape)}; "
          f"MLP {math.prod(data_shape)}-{HIDDEN}-{args.latent}, batch {args.batch}, "
          f"epochs {args.epochs}, Adam lr {args.lr}; IWAE k={k} on {n_iwae} test examples")

    load, cores = _load_average(), os.cpu_count() or 1
    if args.device == "cpu" and threads > 1 and load is not None and load > cores / 2:
        print(f"note: load average {load:.1f} on {cores} cores: with {threads} torch threads "
              "wall-clock figures swing by several x on a shared machine; try --threads 1")
    warm_up(args.device, math.prod(data_shape), args.latent, args.batch)
    dims = (args.batch, math.prod(data_shape), HIDDEN, args.latent)
    roof_fp32 = roof = None
    if args.device == "cpu":  # one small product is no yardstick for a GPU
        roof_fp32 = roof = roofline.measure(*dims)
        if args.bf16:
            roof = roofline.measure(*dims, dtype=torch.bfloat16)
        print(f"matmul roofline ({roof['dtype']}): {roof['peak_gflops']:.1f} GFLOP/s for "
              f"({dims[0]} x {dims[1]}) by ({dims[1]} x {dims[2]}); the step's 14 products "
              f"take {roof['matmul_floor_ms']:.2f} ms one by one "
              f"({roof['flops_per_example'] / 1e6:.2f} MFLOP per example), its Adam update "
              f"{roof['adam_ms']:.2f} ms")
    out_root = args.pythae_output_dir or tempfile.mkdtemp(prefix="pythae-bench-")
    os.makedirs(out_root, exist_ok=True)
    rows: list[dict[str, Any]] = []
    try:
        for r in range(args.repeats):
            seed = args.seed + r
            row: dict[str, Any] = {"repeat": r, "seed": seed}

            py = train_pythae(x_train, args, seed, out_root)
            print(f"[{r}] pythae train: {py['examples_per_s']:9.1f} ex/s "
                  f"(steady {py['steady_examples_per_s']:9.1f}; "
                  f"{py['examples_per_cpu_s']:9.1f} per CPU-s), {py['wall_s']:.2f} s "
                  f"for {py['examples']} examples")
            en = train_engine(len(x_train), args, seed)
            print(f"[{r}] engine train: {en['examples_per_s']:9.1f} ex/s "
                  f"(steady {en['steady_examples_per_s']:9.1f}; "
                  f"{en['examples_per_cpu_s']:9.1f} per CPU-s), {en['wall_s']:.2f} s "
                  f"for {en['examples']} examples (its own per-step examples_per_s, "
                  f"time-weighted: {en['sink_examples_per_s']:.1f})")

            if args.device == "cpu":  # the same work with no framework, right after
                bare = roofline.bare_examples_per_s(*dims, steps=len(batch_sizes(
                    len(x_train), args.batch, args.epochs)))
                row["bare_examples_per_s"] = bare
                print(f"[{r}] bare step (float32, written out by hand): {bare:9.1f} ex/s")

            pm, em, el = py["model"], en["model"], en["likelihood"]
            e_py = test_elbo(pythae_encode(pm), pythae_logits(pm), x_test, args.elbo_samples,
                             seed)
            e_en = test_elbo(em.encode, em.decode, x_test, args.elbo_samples, seed)
            print(f"[{r}] test ELBO (nats/example, {args.elbo_samples} samples): "
                  f"pythae {e_py['elbo']:.3f}, engine {e_en['elbo']:.3f}, "
                  f"gap {e_en['elbo'] - e_py['elbo']:+.3f}")

            t_pys, t_ens = [], []
            for _ in range(args.iwae_timings):  # alternated; same seed, so same values
                iw_py, t = pythae_iwae(pm, x_iwae, k, args.pythae_nll_batch, seed, args.device)
                t_pys.append(t)
                iw_en, t = engine_iwae(em, el, x_iwae, k, args.iwae_chunk, seed, args.device)
                t_ens.append(t)
            t_py, t_en = min(t_pys), min(t_ens)
            print(f"[{r}] pythae get_nll: {iw_py:.3f} nats in {t_py:.3f} s "
                  f"(best of {args.iwae_timings})")
            print(f"[{r}] engine iwae_bound: {iw_en:.3f} nats in {t_en:.3f} s "
                  f"(best of {args.iwae_timings}; speedup {t_py / t_en:.2f}x)")
            wrapped = pythae_as_engine_model(pm, data_shape)
            iw_x, t_x = engine_iwae(wrapped, el, x_iwae, k, args.iwae_chunk, seed, args.device)
            print(f"[{r}] engine iwae_bound on pythae's weights: {iw_x:.3f} nats in {t_x:.3f} s "
                  f"(vs get_nll {iw_py:.3f}: {iw_x - iw_py:+.3f})")

            row.update({
                "pythae_examples_per_s": py["examples_per_s"],
                "engine_examples_per_s": en["examples_per_s"],
                "pythae_steady_examples_per_s": py["steady_examples_per_s"],
                "engine_steady_examples_per_s": en["steady_examples_per_s"],
                "pythae_train_wall_s": py["wall_s"], "engine_train_wall_s": en["wall_s"],
                "pythae_train_cpu_s": py["cpu_s"], "engine_train_cpu_s": en["cpu_s"],
                "pythae_examples_per_cpu_s": py["examples_per_cpu_s"],
                "engine_examples_per_cpu_s": en["examples_per_cpu_s"],
                "pythae_train_call_s": py["train_call_s"],
                "engine_train_call_s": en["train_call_s"],
                "engine_sink_examples_per_s": en["sink_examples_per_s"],
                "examples": py["examples"], "engine_examples": en["examples"],
                "elbo_pythae": e_py["elbo"], "elbo_engine": e_en["elbo"],
                "rate_pythae": e_py["rate"], "rate_engine": e_en["rate"],
                "distortion_pythae": e_py["distortion"],
                "distortion_engine": e_en["distortion"],
                "iwae_pythae": iw_py, "iwae_engine": iw_en,
                "iwae_engine_estimator_on_pythae_model": iw_x,
                "iwae_time_pythae_s": t_py, "iwae_time_engine_s": t_en,
                "iwae_time_engine_on_pythae_model_s": t_x,
            })
            rows.append(row)
            del py, en, pm, em, el, wrapped
    finally:
        if args.pythae_output_dir is None:
            shutil.rmtree(out_root, ignore_errors=True)

    def col(key: str) -> list[float]:
        return [row[key] for row in rows]

    eps_py, eps_en = median(col("pythae_examples_per_s")), median(col("engine_examples_per_s"))
    st_py = median(col("pythae_steady_examples_per_s"))
    st_en = median(col("engine_steady_examples_per_s"))
    elbo_py, elbo_en = statistics.fmean(col("elbo_pythae")), statistics.fmean(col("elbo_engine"))
    t_py, t_en = median(col("iwae_time_pythae_s")), median(col("iwae_time_engine_s"))
    def paired(num: str, den: str) -> float:
        """Median over repeats of the per-repeat ratio (both sides measured back to back)."""
        return median([row[num] / row[den] for row in rows])

    result = {
        "throughput_ratio": paired("engine_examples_per_s", "pythae_examples_per_s"),
        "elbo_gap_nats": elbo_en - elbo_py,
        "iwae_speedup": paired("iwae_time_pythae_s", "iwae_time_engine_s"),
        "steady_throughput_ratio": paired("engine_steady_examples_per_s",
                                          "pythae_steady_examples_per_s"),
        "cpu_time_throughput_ratio": paired("engine_examples_per_cpu_s",
                                            "pythae_examples_per_cpu_s"),
        "ratio_of_medians": {"throughput": eps_en / eps_py, "iwae_speedup": t_py / t_en},
        "pythae_examples_per_s": eps_py, "engine_examples_per_s": eps_en,
        "pythae_steady_examples_per_s": st_py, "engine_steady_examples_per_s": st_en,
        "pythae_examples_per_cpu_s": median(col("pythae_examples_per_cpu_s")),
        "engine_examples_per_cpu_s": median(col("engine_examples_per_cpu_s")),
        "load_average_1min": _load_average(),
        "elbo_pythae": elbo_py, "elbo_engine": elbo_en, "elbo_samples": args.elbo_samples,
        "elbo_test_examples": int(x_test.shape[0]),
        "iwae_pythae": statistics.fmean(col("iwae_pythae")),
        "iwae_engine": statistics.fmean(col("iwae_engine")),
        "iwae_engine_estimator_on_pythae_model":
            statistics.fmean(col("iwae_engine_estimator_on_pythae_model")),
        "iwae_time_pythae_s": t_py, "iwae_time_engine_s": t_en,
        "iwae_k": k, "iwae_examples": int(n_iwae), "pythae_nll_batch": args.pythae_nll_batch,
        "iwae_timings": args.iwae_timings,
        "epochs": args.epochs, "batch": args.batch, "latent": args.latent, "lr": args.lr,
        "n_train": int(x_train.shape[0]), "n_test": int(x_test.shape[0]),
        "repeats": args.repeats, "seed": args.seed, "threads": threads, "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
        "compile": args.compile, "cuda_graph": args.cuda_graph, "bf16": args.bf16,
        "torch_version": torch.__version__,
        "pythae_version": _dist_version("pythae"),
        "python_version": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "pythae_progress_bar": args.pythae_progress,
        "targets": TARGETS,
        "per_repeat": rows,
    }
    result = {"bench": "engine_vs_pythae", **result}
    result["meets_targets"] = {
        "throughput_ratio": result["throughput_ratio"] >= TARGETS["throughput_ratio_min"],
        "elbo_gap_nats": abs(result["elbo_gap_nats"]) <= TARGETS["abs_elbo_gap_nats_max"],
        "iwae_speedup": result["iwae_speedup"] >= TARGETS["iwae_speedup_min"],
    }
    if roof is not None and roof_fp32 is not None:  # both or neither (CPU runs)
        result["roofline"] = roofline.summarise(roof, args.batch, eps_en, eps_py,
                                                roof_fp32["peak_gflops"])
        result["roofline_fraction"] = result["roofline"]["engine_fraction"]
        result["throughput_ratio_ceiling"] = result["roofline"]["throughput_ratio_ceiling"]
        result["bare_examples_per_s"] = median(col("bare_examples_per_s"))
        result["throughput_ratio_bare_ceiling"] = paired("bare_examples_per_s",
                                                         "pythae_examples_per_s")
        result["engine_vs_bare"] = paired("engine_examples_per_s", "bare_examples_per_s")
        result["meets_targets"]["roofline_fraction"] = (
            result["roofline_fraction"] >= TARGETS["roofline_fraction_min"])
    print(f"throughput: engine {eps_en:.1f} / pythae {eps_py:.1f} ex/s (medians); median "
          f"paired ratio {result['throughput_ratio']:.3f} "
          f"(target >= {TARGETS['throughput_ratio_min']})")
    print(f"ELBO gap: {elbo_en:.3f} - {elbo_py:.3f} = {result['elbo_gap_nats']:+.3f} nats "
          f"(target |gap| <= {TARGETS['abs_elbo_gap_nats_max']})")
    print(f"IWAE k={k}, n={n_iwae}: pythae {t_py:.3f} s, engine {t_en:.3f} s (medians); "
          f"median paired speedup {result['iwae_speedup']:.2f}x "
          f"(target >= {TARGETS['iwae_speedup_min']})")
    if "roofline" in result:
        rl = result["roofline"]
        print(f"roofline: engine {rl['engine_gflops']:.1f} GFLOP/s = "
              f"{rl['engine_fraction']:.0%} of the {rl['dtype']} peak (target >= "
              f"{TARGETS['roofline_fraction_min']:.0%}); pythae {rl['pythae_fraction']:.0%} "
              f"of the float32 peak; a step of only its matmuls and Adam would be "
              f"{rl['throughput_ratio_ceiling']:.2f}x pythae; the bare step ran at "
              f"{result['throughput_ratio_bare_ceiling']:.2f}x pythae, the engine at "
              f"{result['engine_vs_bare']:.0%} of the bare step's speed (paired medians)")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
