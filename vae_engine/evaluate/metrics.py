"""The optional evaluation metrics, one registered component each (STYLE rule 3).

A metric is a config (its ``name``, parameters, paper, summary, the summary keys it writes,
and ``applies(data)``: whether the data set supports it) plus a function ``run(config, ctx)
-> dict`` registered with it. The catalogue lists them; ``eval.metrics`` names the ones to
run (default: every metric that applies to the data set). They run at the final evaluation,
and at every evaluation when ``eval.metrics_every_eval`` is set: they cost seconds to a minute
where an intermediate evaluation costs a fraction of a second.

This module imports no torch; the implementations load on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from vae_engine.registry import ComponentConfig, Registry


@dataclass
class MetricContext:
    """What a metric may use: the trained model and likelihood (eval mode), the loaded data
    (a DataBundle), encoder means of the whole test split (N, D) and the run's seed."""

    model: Any
    likelihood: Any
    data: Any
    codes_test: Any
    seed: int
    n_samples: int  # images to compare for sample-quality metrics
    dataset_spec: Any = None  # the spec's dataset section (fd_lenet reloads grey levels)


class MetricConfig(ComponentConfig):
    keys: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def applies(cls, data: Any) -> bool:
        return True


METRICS: Registry[Callable[[Any, MetricContext], dict[str, Any]]] = Registry(
    "metric", tag="name", field="eval.metrics"
)


class DisentanglementMetric(MetricConfig):
    """MIG, SAP and DCI of the encoder means against the data set's generative factors."""

    paper: ClassVar[str] = (
        "Chen et al. 2018 (MIG); Kumar et al. 2018 (SAP); Eastwood & Williams 2018 (DCI); "
        "definitions after google-research/disentanglement_lib"
    )
    summary: ClassVar[str] = (
        "MIG, SAP, DCI disentanglement/completeness/informativeness of the encoder means "
        "(data sets with generative factors: shapes, npz with factors_*)"
    )
    keys: ClassVar[tuple[str, ...]] = ("mig", "sap", "dci_disentanglement", "dci_completeness",
                                       "dci_informativeness")

    name: Literal["disentanglement"] = "disentanglement"

    @classmethod
    def applies(cls, data: Any) -> bool:
        return bool(getattr(data, "factors_generative", False))


@METRICS.register(DisentanglementMetric)
def run_disentanglement(config: DisentanglementMetric, ctx: MetricContext) -> dict[str, Any]:
    from vae_engine.evaluate.disentanglement import disentanglement_scores

    d = ctx.data
    out = disentanglement_scores(ctx.codes_test, d.factors_test, d.factor_discrete or None,
                                 ctx.seed)
    out["factor_names"] = list(d.factor_names)
    return {k: out[k] for k in (*config.keys, "dci_importance", "factor_names")}


class FactorVAEMetric(MetricConfig):
    """FactorVAE score: majority-vote accuracy of the least-varying code dimension."""

    paper: ClassVar[str] = "Kim & Mnih 2018, Disentangling by Factorising (ICML)"
    summary: ClassVar[str] = (
        "FactorVAE score from batches with one factor held fixed (data sets with a factor "
        "sampler: shapes)"
    )
    keys: ClassVar[tuple[str, ...]] = ("factor_vae_score",)

    name: Literal["factor_vae"] = "factor_vae"
    batch_size: int = Field(default=64, ge=2, le=1024, description="images per vote")
    n_train: int = Field(default=300, ge=1, description="votes for the classifier")
    n_eval: int = Field(default=150, ge=1, description="held-out votes scored")

    @classmethod
    def applies(cls, data: Any) -> bool:
        return getattr(data, "factor_sampler", None) is not None


@METRICS.register(FactorVAEMetric)
def run_factor_vae(config: FactorVAEMetric, ctx: MetricContext) -> dict[str, Any]:
    from vae_engine.evaluate.intervention import factor_vae_score

    return factor_vae_score(_encoder(ctx), ctx.data.factor_sampler, ctx.codes_test, ctx.seed,
                            config.batch_size, config.n_train, config.n_eval)


class BetaVAEMetric(MetricConfig):
    """beta-VAE score: which factor a pair batch shares, from mean |z1 - z2|."""

    paper: ClassVar[str] = (
        "Higgins et al. 2017, beta-VAE: Learning Basic Visual Concepts with a Constrained "
        "Variational Framework (ICLR)"
    )
    summary: ClassVar[str] = (
        "beta-VAE score from pairs sharing one factor (data sets with a factor sampler: shapes)"
    )
    keys: ClassVar[tuple[str, ...]] = ("beta_vae_score",)

    name: Literal["beta_vae"] = "beta_vae"
    batch_size: int = Field(default=64, ge=1, le=1024, description="pairs per point")
    n_train: int = Field(default=300, ge=2, description="points for the classifier")
    n_eval: int = Field(default=150, ge=1, description="held-out points scored")

    @classmethod
    def applies(cls, data: Any) -> bool:
        return getattr(data, "factor_sampler", None) is not None


@METRICS.register(BetaVAEMetric)
def run_beta_vae(config: BetaVAEMetric, ctx: MetricContext) -> dict[str, Any]:
    from vae_engine.evaluate.intervention import beta_vae_score

    return beta_vae_score(_encoder(ctx), ctx.data.factor_sampler, ctx.seed, config.batch_size,
                          config.n_train, config.n_eval)


MIN_FD_SIDE = 16  # fd_lenet needs images of at least this side (not the 8x8 digits)


class FdLenetMetric(MetricConfig):
    """Fréchet distance in the features of a LeNet trained by vaelab on the data's labels."""

    paper: ClassVar[str] = (
        "Heusel et al. 2017 (FID), with a LeNet-style classifier (LeCun et al. 1998) in place "
        "of Inception: not comparable with published FID"
    )
    summary: ClassVar[str] = (
        "fd_lenet: Fréchet distance between test images and prior samples (and "
        "reconstructions) in the features of vaelab's own LeNet; not comparable with "
        "published FID (data sets with a label factor and images of 16 px or more: mnist5k)"
    )
    keys: ClassVar[tuple[str, ...]] = ("fd_lenet", "fd_lenet_recon",
                                       "fd_lenet_classifier_accuracy")

    name: Literal["fd_lenet"] = "fd_lenet"

    @classmethod
    def applies(cls, data: Any) -> bool:
        names = list(getattr(data, "factor_names", []) or [])
        x = getattr(data, "x_train", None)
        return ("label" in names and getattr(data, "factors_train", None) is not None
                and x is not None and min(x.shape[2:]) >= MIN_FD_SIDE)


@METRICS.register(FdLenetMetric)
def run_fd_lenet(config: FdLenetMetric, ctx: MetricContext) -> dict[str, Any]:
    import torch

    from vae_engine.evaluate.frechet import fd_lenet
    from vae_engine.evaluate.lenet import lenet_for

    d = ctx.data
    if ctx.dataset_spec is not None and getattr(ctx.dataset_spec, "binarize", "none") != "none":
        # The classifier and the reference images are the grey levels (one classifier per
        # data set, whatever the run's binarisation; decoder means are grey too).
        from vae_engine.data import load_dataset

        d = load_dataset(ctx.dataset_spec.model_copy(update={"binarize": "none"}))
    col = list(d.factor_names).index("label")
    net, acc = lenet_for(d.x_train, d.factors_train[:, col], d.x_test, d.factors_test[:, col])
    x = d.x_test.to(next(ctx.model.parameters()).device)
    gen = torch.Generator(device=x.device).manual_seed(ctx.seed + 1)
    with torch.no_grad():
        samples = torch.cat([ctx.likelihood.mean(ctx.model.sample_prior(len(xb), 1.0, gen))
                             for xb in x.split(500)])
        recon = torch.cat([ctx.likelihood.mean(ctx.model(xb, gen).params) for xb in x.split(500)])
    return {"fd_lenet": fd_lenet(net, x, samples), "fd_lenet_recon": fd_lenet(net, x, recon),
            "fd_lenet_classifier_accuracy": acc, "fd_lenet_n_images": int(len(x))}


def _encoder(ctx: MetricContext) -> Callable[[Any], Any]:
    def encode(images: Any) -> Any:
        dev = next(ctx.model.parameters()).device
        return ctx.model.encode(images.to(dev))[0]  # (n, D) encoder means

    return encode


def resolve(entries: list[Any] | None, data: Any) -> list[Any]:
    """The metrics to run: ``entries`` as given (names or {name, parameters} dicts), or
    (None) every registered one that applies to the data set."""
    if entries is None:
        return [e.name for e in METRICS.entries() if e.config.applies(data)]  # type: ignore[attr-defined]
    return list(entries)


def run_metrics(entries: list[Any], ctx: MetricContext) -> dict[str, Any]:
    """Run each metric; one that does not apply to the data set is listed in
    ``metrics_skipped`` instead."""
    out: dict[str, Any] = {}
    for item in entries:
        name = item if isinstance(item, str) else item["name"]
        entry = METRICS.entry(name)
        if not entry.config.applies(ctx.data):  # type: ignore[attr-defined]
            out.setdefault("metrics_skipped", []).append(name)
            continue
        config = entry.config() if isinstance(item, str) else entry.config.model_validate(item)
        out.update(entry.impl(config, ctx))
    return out
