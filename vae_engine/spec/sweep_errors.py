"""Validating a sweep's points: one SpecError naming every bad path at once (STYLE rule 4).

Each error is reported under the request field it came from (``grid.<path>``,
``overrides[<i>].<path>``, or ``base.<field>`` when no override explains it), with the point
indices and values where it fails.
"""

from __future__ import annotations

import json
from typing import Any

from vae_engine.errors import SpecError
from vae_engine.spec.loading import parse_spec
from vae_engine.spec.sweep_paths import PathProblem, apply_order, is_tag_path, walk
from vae_engine.spec.train import TrainSpec

_SHOWN_POINTS = 8  # point indices quoted in one error message before "and N more"


def _spec_errors(spec: dict[str, Any]) -> list[dict[str, str]]:
    """parse_spec's errors, one per field (cross-field problems included)."""
    try:
        parse_spec(spec)
    except SpecError as err:
        return list(err.errors)
    return []


def _related(a: str, b: str) -> bool:
    """One dotted path equals the other or contains it."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _owner(field: str, canon: dict[str, str]) -> str | None:
    """The override path (user spelling) an error field belongs to: at or under it, else the
    override path inside the erroneous section."""
    under = [p for p, c in canon.items() if field == c or field.startswith(c + ".")]
    if under:
        return max(under, key=lambda p: len(canon[p]))
    above = sorted((p for p, c in canon.items() if c.startswith(field + ".")), key=apply_order)
    if above:
        return above[0]
    # a key kept from the base after an override switched its section's kind
    switched = [p for p, c in canon.items() if is_tag_path(c) and field.startswith(
        c.rsplit(".", 1)[0] + ".")]
    return switched[0] if switched else None


def _kind(selected: tuple[str, Any] | None) -> str:
    return f"{selected[0]} {selected[1]!r}" if selected else ""


def _problem_message(p: PathProblem) -> str:
    where = f"in {p.level}" if p.level else "at the top level of the spec"
    if p.leaf:
        return f"{p.level} is a value, not a section: set '{p.level}' as a whole"
    valid = ", ".join(p.valid)
    if p.elsewhere and p.selected:
        tag, value = p.selected
        return (f"'{p.key}' is not a key of {p.level} when its {tag} is {value!r} (only of "
                f"{tag} {', '.join(p.elsewhere)}); valid keys: {valid}")
    sel = f" ({_kind(p.selected)})" if p.selected else ""
    return f"unknown key '{p.key}' {where}{sel}; valid keys: {valid}"


def _static_message(problems: list[PathProblem]) -> str:
    """One message for a path that is bad in every point, merging the kinds it was seen with."""
    msgs = list(dict.fromkeys(_problem_message(p) for p in problems))
    if len(msgs) == 1:
        return msgs[0]
    p = problems[0]
    by_kind = "; ".join(f"{', '.join(q.valid)} ({_kind(q.selected)})"
                        for q in {q.selected: q for q in problems}.values())
    return f"unknown key '{p.key}' in {p.level}; valid keys: {by_kind}"


def _fmt(value: Any) -> str:
    return json.dumps(value, default=str)


def _where(indices: list[int], values: list[Any], path: str | None, n_points: int) -> str:
    """'point 3 (kl.schedule.beta=-1)' or 'points 1, 4 (kl.schedule.beta in [-1, -2])'."""
    if len(indices) == n_points and n_points > 1:
        head = "every point"
    elif len(indices) == 1:
        head = f"point {indices[0]}"
    else:
        shown = ", ".join(map(str, indices[:_SHOWN_POINTS]))
        more = len(indices) - _SHOWN_POINTS
        head = f"points {shown}" + (f" and {more} more" if more > 0 else "")
    if path is None:
        return head
    distinct = list({_fmt(v): v for v in values})
    if len(distinct) == 1:
        return f"{head} ({path}={distinct[0]})"
    return f"{head} ({path} in [{', '.join(distinct[:_SHOWN_POINTS])}])"


def validate_points(points: list[dict[str, Any]], source: str = "grid") -> list[TrainSpec]:
    """Parse every point's spec; raise one SpecError naming every bad path.

    ``source`` names the request field the paths came from: ``"grid"`` (errors on
    ``grid.<path>``) or ``"overrides"`` (errors on ``overrides[<index>].<path>``). An error
    that no override path explains belongs to the base spec (``base.<field>``). Messages
    name the point indices (and values) where a path fails.
    """
    static: dict[str, list[PathProblem]] = {}
    grouped: dict[tuple[str, str], tuple[str | None, list[int], list[Any]]] = {}

    def field_of(index: int, path: str) -> str:
        return f"{source}.{path}" if source == "grid" else f"{source}[{index}].{path}"

    def add(field: str, msg: str, path: str | None, index: int, value: Any) -> None:
        _, idx, vals = grouped.setdefault((field, msg), (path, [], []))
        idx.append(index)
        vals.append(value)

    specs: list[TrainSpec] = []
    for pt in points:
        i, overrides, spec = pt["index"], pt["overrides"], pt["spec"]
        canon, bad = {}, []
        for path in overrides:
            c, problem = walk(path.split("."), spec)
            if problem is None:
                canon[path] = c
                continue
            bad.append(path)
            if problem.static:
                static.setdefault(field_of(i, path), []).append(problem)
            else:
                add(field_of(i, path), _problem_message(problem), path, i, overrides[path])
        errors = _spec_errors(spec)
        for e in errors:
            f, msg = e["field"], e["message"]
            if any(_related(f, b) for b in bad):
                continue  # explained by the bad path itself
            owner = _owner(f, canon)
            if owner is None:
                add("base" if f == "<root>" else f"base.{f}", msg, None, i, None)
            else:
                inner = msg if f == canon[owner] else f"{f}: {msg}"
                add(field_of(i, owner), inner, owner, i, overrides[owner])
        if not errors and not bad:
            specs.append(parse_spec(spec))

    if not static and not grouped:
        return specs
    out = [{"field": f, "message": _static_message(ps)} for f, ps in static.items()]
    n = len(points)
    for (field, msg), (path, idx, vals) in grouped.items():
        out.append({"field": field, "message": f"{_where(idx, vals, path, n)}: {msg}"})
    raise SpecError(out)


