"""The training loop, written as a recipe: setup -> loop -> evaluate -> checkpoint.

``train(spec, sink, artifacts)`` runs the same way in a notebook, the CLI and a Celery task;
all I/O goes through the MetricSink and ArtifactWriter passed in (vae_engine.io).

Determinism and exact resume (CPU): the minibatch order of epoch e is a pure function of
(seed, e); the reparameterisation noise and dynamic binarisation draw from the global torch
generator, whose state is saved in every checkpoint together with the optimizer and the KL
scheme's state; evaluation draws from its own generators so it never perturbs training.
A resumed run therefore replays the uninterrupted run step for step.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from vae_engine.adam_step import FusedAdamStep
from vae_engine.checkpoint import (
    checkpoint_name,
    encode_checkpoint,
    read_checkpoint,
    restore_optimizer,
    restore_rng,
    split_prefix,
)
from vae_engine.compiled import Forward, make_forward
from vae_engine.data import load_dataset
from vae_engine.data.base import DataBundle
from vae_engine.data.binarize import binarize_batch
from vae_engine.device_log import READ_EVERY, DeviceLog, LogReader
from vae_engine.errors import SpecError, VaelabError
from vae_engine.evaluate.honesty import LOG_256, bound_status, data_kind, dequantize
from vae_engine.evaluate.metrics import MetricContext, resolve, run_metrics
from vae_engine.evaluate.summary import evaluate
from vae_engine.graphed import make_stepper
from vae_engine.images import png_bytes, recon_pairs
from vae_engine.io import ArtifactWriter, DiscardArtifacts, MetricSink, dumps
from vae_engine.kl import KLScheme, SchemeContext, build_scheme, rate_term
from vae_engine.likelihoods import build_likelihood
from vae_engine.likelihoods.base import Likelihood
from vae_engine.models import VAEModel, build_model
from vae_engine.spec import TrainSpec, parse_spec, reading_from
from vae_engine.threads import ensure_threads, step_flops

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    status: str  # "completed" | "stopped"
    step: int
    total_steps: int
    summary: dict[str, Any] | None
    last_checkpoint: str | None


@dataclass
class Run:
    """Everything setup() builds; the loop mutates model/optimizer/scheme in place."""

    spec: TrainSpec
    device: torch.device
    data: DataBundle
    model: VAEModel
    likelihood: Likelihood
    scheme: KLScheme
    optimizer: torch.optim.Optimizer
    steps_per_epoch: int
    total_steps: int
    x_eval: torch.Tensor
    dequantized: bool = False  # likelihood.dequantize on 8-bit data (evaluate/honesty.py)
    bound: tuple[bool, str] = (False, "")
    forward: Forward | None = None  # x -> (distortion, rate, output): eager or compiled
    step_optimizer: FusedAdamStep | None = None  # optimizer.step() without its bookkeeping

    @property
    def params(self) -> list[torch.nn.Parameter]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]


# --------------------------------------------------------------------------- setup


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise SpecError([{"field": "train.device", "message": "cuda requested, none found"}])
        return torch.device("cuda")
    return torch.device("cpu")


def setup(spec: TrainSpec, device: str | None = None, compile: bool | None = None,
          read_files: dict[str, str] | None = None) -> Run:
    dev = pick_device(device or spec.train.device)
    torch.manual_seed(spec.train.seed)
    data = load_dataset(reading_from(spec.dataset, "dataset", read_files)).to(dev)
    likelihood = build_likelihood(spec.likelihood).to(dev)
    for warning in likelihood.data_warnings(data.is_binary):
        log.warning(warning)
    model = build_model(spec.model, data.shape, likelihood.params_per_dim * data.shape[0]).to(dev)
    params = list(model.parameters()) + list(likelihood.parameters())
    o = spec.optim
    # fused (CPU and CUDA): ~1.4x faster per step than foreach on the pythae benchmark's MLP
    optimizer = torch.optim.Adam(
        params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay, fused=True
    )
    n_train = data.x_train.shape[0]
    spe = math.ceil(n_train / o.batch_size)
    total = spe * spec.train.epochs
    if spec.train.max_steps is not None:
        total = min(total, spec.train.max_steps)
    ctx = SchemeContext(
        data_dims=data.n_dims, latent_dims=model.latent_dim, total_steps=total,
        steps_per_epoch=spe, n_groups=len(getattr(model, "group_sizes", None) or (1,)),
        reduction=spec.kl.reduction,
    )
    scheme = build_scheme(spec.kl.schedule, ctx).to(dev)
    kind = data_kind(data.x_test)
    dequantized = bool(getattr(spec.likelihood, "dequantize", False))
    if dequantized and kind == "continuous":
        raise SpecError([{"field": "likelihood.dequantize",
                          "message": "dequantisation needs 8-bit data (every value k/255)"}])
    x_test = data.x_test
    if dequantized:  # one fixed noise draw for every evaluation of this run
        x_test = dequantize(x_test, torch.Generator(device=dev).manual_seed(spec.train.seed + 1))
        data.x_test = x_test
    x_eval = x_test[: spec.eval.max_examples]
    bound = bound_status(likelihood, "binary" if data.dynamic_binarize else kind, dequantized)
    if not bound[0]:
        log.warning("elbo/iwae of this run are not bounds: %s", bound[1])
    use_compile = spec.train.compile if compile is None else compile
    return Run(spec, dev, data, model, likelihood, scheme, optimizer, spe, total, x_eval,
               dequantized, bound, make_forward(model, likelihood, use_compile,
                                                spec.train.bf16), FusedAdamStep(optimizer))


def restore(run: Run, path: str) -> int:
    """Load a checkpoint into the run; return the step to continue from."""
    tensors, meta = read_checkpoint(path)
    # Compared after both pass through today's spec, so a checkpoint written before a new
    # spec field existed (its default filled in) still resumes.
    if parse_spec(meta["spec"]).model_dump(mode="json") != run.spec.model_dump(mode="json"):
        raise VaelabError(f"checkpoint {path} was written for a different spec")
    run.model.load_state_dict(split_prefix(tensors, "model"))
    run.likelihood.load_state_dict(split_prefix(tensors, "likelihood"))
    restore_optimizer(run.optimizer, tensors, meta)
    run.scheme.load_state_dict(meta["scheme"])
    restore_rng(tensors)
    return int(meta["step"])


# --------------------------------------------------------------------------- one step


def epoch_order(seed: int, epoch: int, n: int, device: torch.device) -> torch.Tensor:
    """The minibatch order of an epoch: a pure function of (seed, epoch)."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen).to(device)


def train_step(
    run: Run, x: torch.Tensor, step: int, guard: DeviceLog, with_grad_norm: bool = True
) -> dict[str, torch.Tensor | float]:
    """One optimizer step at (0-based) step ``step``. Returns device tensors and floats to
    log (nothing unless ``with_grad_norm``: a step that is not logged); never reads a tensor
    on the host (device_log.py): the non-finite check goes to ``guard``, the controllers
    update their device state."""
    spec = run.spec
    distortion, rate, out = run.forward(x)
    r_term, rate_logs = rate_term(out, spec.kl, run.scheme, step)
    if spec.kl.reduction == "mean":
        n, m = run.data.n_dims, run.model.latent_dim
        loss, logs = run.scheme.objective(distortion / n, r_term / m, step)
        beta_scale = n / m
    else:
        loss, logs = run.scheme.objective(distortion, r_term, step)
        beta_scale = 1.0
    for p in run.params:  # optimizer.zero_grad(set_to_none=True) without its ~40 us of Python
        p.grad = None
    loss.backward()
    grads = [p.grad for p in run.params if p.grad is not None]
    grad_norm = None
    if spec.optim.grad_clip:
        grad_norm = torch.nn.utils.clip_grad_norm_(run.params, spec.optim.grad_clip)
    elif with_grad_norm:  # the norm costs a pass over all gradients; no clipping (an
        grad_norm = torch.nn.utils.get_total_norm(grads)  # infinite max_norm gives NaNs)
    # A non-finite loss or gradient skips this and every later update (device_log.py).
    guard.check(loss, grads, grad_norm)
    (run.step_optimizer or run.optimizer.step)()
    if type(run.scheme).update is not KLScheme.update:  # controllers need this step's values
        stats = {"rate": rate.detach(), "rate_term": r_term.detach(),
                 "distortion": distortion.detach()}
        if not run.scheme.device_stats:  # a scheme written for floats: read them (a sync)
            stats = {k: v.item() for k, v in stats.items()}
        run.scheme.update(step, stats)
    if not with_grad_norm:
        return {}
    metrics: dict[str, torch.Tensor | float] = {
        "loss": loss.detach(), "distortion": distortion.detach(), "rate": rate.detach(),
        "elbo": -(distortion + rate).detach(),
        "beta_effective": logs.pop("beta") * beta_scale,
        **logs, **rate_logs,
    }
    if grad_norm is not None:
        metrics["grad_norm"] = grad_norm
    if out.group_sizes is not None:
        for g, v in enumerate(out.kl_groups().mean(0).detach().unbind()):
            metrics[f"kl_group/{g}"] = v
    return metrics


# --------------------------------------------------------------------------- evaluation


def eval_generator(run: Run, step: int) -> torch.Generator:
    return torch.Generator(device=run.device).manual_seed(run.spec.train.seed * 7919 + step)


def run_evaluation(
    run: Run, step: int, sink: MetricSink, artifacts: ArtifactWriter,
    beta_effective: float | None, final: bool = True,
) -> dict[str, Any]:
    """Evaluate on the test split, log eval/* scalars, write image grids. The final
    evaluation runs the IWAE at eval.iwae_k and the extra metrics; an intermediate one a
    small-k IWAE on a subset (and the metrics only if eval.metrics_every_eval)."""
    ev = run.spec.eval
    k = ev.iwae_k if final else ev.intermediate_iwae_k
    n_dims = run.data.n_dims
    summary = evaluate(
        run.model, run.likelihood, run.x_eval, iwae_k=k, iwae_chunk=ev.iwae_chunk,
        au_threshold=ev.au_threshold, generator=eval_generator(run, step),
        iwae_examples=None if final else ev.intermediate_iwae_examples,
        x_mi=run.data.x_test, nats_offset=n_dims * LOG_256 if run.dequantized else 0.0,
    )
    summary["step"] = step
    summary["evaluation"] = "final" if final else "intermediate"
    summary["bound"], summary["bound_reason"] = run.bound
    summary["dequantized"] = run.dequantized
    if final or ev.metrics_every_eval:
        summary.update(extra_metrics(run))
    sink.log(step, {f"eval/{k}": float(v) for k, v in summary.items()  # timings stay out:
                    if isinstance(v, int | float) and not isinstance(v, bool)  # not replayable
                    and k != "metrics_seconds"})
    summary["beta_effective"] = beta_effective  # the last logged training value
    write_images(run, step, artifacts)
    return summary


def extra_metrics(run: Run) -> dict[str, Any]:
    """The registered metrics named by eval.metrics (default: all that apply), model in eval
    mode; ``metrics_seconds`` records their cost."""
    names = resolve(run.spec.eval.metrics, run.data)
    if not names:
        return {}
    start = time.perf_counter()
    model, lik = run.model, run.likelihood
    was = model.training
    model.eval()
    lik.eval()
    try:
        with torch.no_grad():
            codes = torch.cat([model.encode(xb)[0] for xb in run.data.x_test.split(500)])
        ctx = MetricContext(model, lik, run.data, codes, run.spec.train.seed,
                            run.spec.eval.n_samples, run.spec.dataset)
        out = run_metrics(names, ctx)
    finally:
        model.train(was)
        lik.train(was)
    out["metrics_seconds"] = time.perf_counter() - start
    return out


@torch.no_grad()
def write_images(run: Run, step: int, artifacts: ArtifactWriter) -> None:
    model, lik = run.model, run.likelihood
    was = model.training
    model.eval()
    lik.eval()
    try:
        gen = torch.Generator(device=run.device).manual_seed(run.spec.train.seed)  # same z
        n = run.spec.eval.n_samples
        samples = lik.mean(model.sample_prior(n, 1.0, gen))
        artifacts.write("samples", step, f"samples_{step:08d}.png", png_bytes(samples, scale=2))
        x = run.x_eval[: max(1, n // 2)]
        recon = lik.mean(model(x, gen).params)
        pairs, cols = recon_pairs(x, recon)
        artifacts.write("recon", step, f"recon_{step:08d}.png", png_bytes(pairs, cols, scale=2))
    finally:
        model.train(was)
        lik.train(was)


def write_checkpoint(
    run: Run, step: int, sink: MetricSink, artifacts: ArtifactWriter
) -> str:
    """Flush the sink, then write the checkpoint: every point logged up to ``step`` is stored
    before a checkpoint that a resumed run would start after exists (a crash in between
    would otherwise lose them for good: the resumed run never logs them again)."""
    sink.flush()
    data = encode_checkpoint(
        model=run.model, likelihood=run.likelihood, optimizer=run.optimizer, step=step,
        epoch=step // run.steps_per_epoch, spec=run.spec, data_shape=run.data.shape,
        scheme_state=run.scheme.state_dict(),
    )
    return artifacts.write("checkpoint", step, checkpoint_name(step), data)


# --------------------------------------------------------------------------- the loop


def eval_steps(run: Run, after: int) -> list[int]:
    """The steps after ``after`` at which the loop evaluates: every ``eval_every_epochs``
    epoch boundary before the end, and the end."""
    every, spe, total = run.spec.train.eval_every_epochs, run.steps_per_epoch, run.total_steps
    steps = [] if not every else [s for s in range(spe * every, total, spe * every)
                                  if s > after]
    return steps + [total]


def train(spec: TrainSpec | dict[str, Any], sink: MetricSink | None = None,
          artifacts: ArtifactWriter | None = None, resume_from: str | None = None,
          should_stop: Callable[[], bool] | None = None, device: str | None = None,
          threads: int | None = None, compile: bool | None = None,
          read_every: int = READ_EVERY, read_files: dict[str, str] | None = None
          ) -> TrainResult:
    """Train one VAE. See the module docstring for the resume and determinism contract.

    ``threads`` overrides the CPU thread count (vae_engine.threads); ``compile`` overrides
    ``train.compile``; ``read_every`` bounds the steps between two reads of the device (the
    metrics and the non-finite flag; device_log.py): 1 reads after every logged step;
    ``read_files``: user files read from other paths (``spec.loading.reading_from``)."""
    spec = parse_spec(spec) if isinstance(spec, dict) else spec
    sink = sink or MetricSink()
    artifacts = artifacts or DiscardArtifacts()
    run = setup(spec, device, compile, read_files)  # threads next: the rule needs the model
    ensure_threads(threads, lambda: step_flops(run.model, run.data.x_train[:spec.optim.batch_size]))
    step = restore(run, resume_from) if resume_from else 0
    last_ckpt = resume_from
    sink.start(run.total_steps, step)
    sink.plan(eval_steps(run, step))
    t = spec.train
    n_train, bs = run.data.x_train.shape[0], spec.optim.batch_size
    read_every = max(1, read_every)
    order, order_epoch = None, -1
    last_metrics: dict[str, float] = {}
    guard = DeviceLog(run.device, run.optimizer, step)
    reader, step_fn = LogReader(sink, guard, last_ckpt), make_stepper(run, guard, train_step)
    while step < run.total_steps:
        epoch, i = divmod(step, run.steps_per_epoch)
        if order_epoch != epoch:
            order, order_epoch = epoch_order(t.seed, epoch, n_train, run.device), epoch
        x = run.data.x_train.index_select(0, order[i * bs : (i + 1) * bs])  # 2x [idx]'s speed
        if run.data.dynamic_binarize:
            x = binarize_batch(x)
        if run.dequantized:
            x = dequantize(x)
        log_now = (step + 1) % t.log_every == 0 or step + 1 == run.total_steps
        metrics = step_fn(run, x, step, guard, with_grad_norm=log_now)
        step += 1
        reader.seen += x.shape[0]
        if log_now:
            metrics["lr"] = run.optimizer.param_groups[0]["lr"]
            metrics.update(run.likelihood.metrics())
            guard.add(step, metrics)
            if step - reader.last_read >= read_every:
                last_metrics = reader.read(step) or last_metrics
        if step == run.total_steps:
            break
        if step % run.steps_per_epoch == 0:
            done = step // run.steps_per_epoch
            evaluate_now = t.eval_every_epochs and done % t.eval_every_epochs == 0
            ckpt_now = t.checkpoint_every_epochs and done % t.checkpoint_every_epochs == 0
            if evaluate_now or ckpt_now:
                last_metrics = reader.read(step) or last_metrics
            if evaluate_now:
                summary = run_evaluation(run, step, sink, artifacts,
                                         last_metrics.get("beta_effective"), final=False)
                sink.log_eval(step, summary)
            if ckpt_now:
                last_ckpt = reader.last_ckpt = write_checkpoint(run, step, sink, artifacts)
        if should_stop is not None and should_stop():
            reader.read(step)
            last_ckpt = write_checkpoint(run, step, sink, artifacts)
            return TrainResult("stopped", step, run.total_steps, None, last_ckpt)

    last_metrics = reader.read(step) or last_metrics
    summary = run_evaluation(run, step, sink, artifacts, last_metrics.get("beta_effective"))
    summary["scheme_state"] = run.scheme.state_dict()
    sink.log_eval(step, summary)
    artifacts.write("summary", step, "summary.json", dumps(summary).encode())
    last_ckpt = write_checkpoint(run, step, sink, artifacts)
    return TrainResult("completed", step, run.total_steps, summary, last_ckpt)

