"""The component catalogue: every dataset, architecture, likelihood, KL schedule, rate
modifier, estimator and reduction the spec accepts, with its parameters.

Generated from the registries: each component's config model gives its name, parameters
(types, defaults, bounds, descriptions) and metadata (paper, summary, warm-up and stateful
flags), so the catalogue cannot drift from what the engine validates, and a component
registered at run time appears at once. ``catalogue()`` is JSON-serialisable; the API serves
it as is and ``scripts/gen_schemes_doc.py`` renders ``docs/schemes.md`` (:func:`render_markdown`)
and the README's component table (:func:`render_readme_table`) from it. Importing this module
does not import torch.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from vae_engine.data import DATASETS
from vae_engine.evaluate.metrics import METRICS
from vae_engine.kl import ESTIMATORS, MODIFIERS, SCHEMES
from vae_engine.kl.balancing import warmup_schedules
from vae_engine.likelihoods import LIKELIHOODS
from vae_engine.models import ARCHITECTURES
from vae_engine.registry import Registry

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



def composition() -> str:
    return (
        "A schedule or controller (kl.schedule) x an optional rate modifier (kl.free_bits, "
        "kl.balancing) x the estimator (kl.estimator) x the reduction (kl.reduction). Rejected: "
        "balancing without a multi-group model or without a warm-up schedule "
        f"({', '.join(warmup_schedules())}); free_bits per_group without latent groups; "
        "batch_stats with a hierarchical model, with per_sample free bits, or with batch_size 1."
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


def _entry(name: str, config: type[BaseModel], skip: str | None) -> dict[str, Any]:
    return {
        "name": name,
        "summary": config.one_line(),  # type: ignore[attr-defined]
        "paper": config.paper,  # type: ignore[attr-defined]
        "parameters": parameters(config, skip=skip),
    }


def _section(registry: Registry[Any]) -> list[dict[str, Any]]:
    return [_entry(e.name, e.config, registry.tag) for e in registry.entries()]


def _schedules() -> list[dict[str, Any]]:
    entries = []
    for e in SCHEMES.entries():
        entry = _entry(e.name, e.config, "kind")
        entry["stateful"] = bool(e.config.stateful)
        entry["warmup"] = bool(e.config.warmup)
        entries.append(entry)
    return entries


def _modifiers() -> list[dict[str, Any]]:
    out = []
    for e in MODIFIERS.entries():
        entry = _entry(e.name, e.config, "kind")
        out.append({"name": e.name, "field": f"kl.{e.config.section}",  # type: ignore[attr-defined]
                    **{k: v for k, v in entry.items() if k != "name"}})
    return out


def _metrics() -> list[dict[str, Any]]:
    out = []
    for e in METRICS.entries():
        entry = _entry(e.name, e.config, "name")
        entry["keys"] = list(e.config.keys)  # type: ignore[attr-defined]
        out.append(entry)
    return out


def catalogue() -> dict[str, Any]:
    """Everything a job spec can name, JSON-serialisable."""
    return {
        "datasets": _section(DATASETS),
        "architectures": _section(ARCHITECTURES),
        "likelihoods": _section(LIKELIHOODS),
        "schedules": _schedules(),
        "modifiers": _modifiers(),
        "estimators": _section(ESTIMATORS),
        "reductions": [dict(e) for e in REDUCTIONS],
        "metrics": _metrics(),
        "composition": composition(),
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
    "metrics": ("Evaluation metrics (final evaluation)", "eval.metrics"),
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
            if e.get("keys"):
                lines += ["Summary keys: " + ", ".join(f"`{k}`" for k in e["keys"]) + ".", ""]
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


# --------------------------------------------------------------------------- README table

README_START = "<!-- components:start (generated by scripts/gen_schemes_doc.py) -->"
README_END = "<!-- components:end -->"


def render_readme_table(cat: dict[str, Any] | None = None) -> str:
    """The README's "what a spec can say" table: one row per spec field, every choice with
    its one-line summary (the markdown between README_START and README_END)."""
    cat = catalogue() if cat is None else cat
    rows = ["| field | choices |", "|---|---|"]
    for section, (_, field) in _TITLES.items():
        if field is None:  # modifiers: one row per spec field they occupy
            by_field: dict[str, list[dict[str, Any]]] = {}
            for e in cat[section]:
                by_field.setdefault(e["field"], []).append(e)
            groups = list(by_field.items())
        else:
            groups = [(field, cat[section])]
        for where, entries in groups:
            choices = "; ".join(f"`{e['name']}`: {e['summary'].rstrip('.')}" for e in entries)
            rows.append(f"| `{where}` | {_cell(choices)} |")
    return "\n".join(rows) + "\n"


def splice_readme(readme: str, table: str | None = None) -> str:
    """``readme`` with the text between the markers replaced by the generated table."""
    head, start, rest = readme.partition(README_START)
    _, end, tail = rest.partition(README_END)
    if not start or not end:
        raise ValueError(f"README lacks the markers {README_START!r} ... {README_END!r}")
    body = render_readme_table() if table is None else table
    return f"{head}{README_START}\n{body}{README_END}{tail}"

