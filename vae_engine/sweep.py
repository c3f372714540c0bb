"""Sweeps: expand a base spec and a grid (or a list of overrides) into one spec per point.

A grid maps dotted spec paths to value lists, ``{"kl.schedule.beta": [0.1, 1, 10],
"train.seed": [0, 1, 2]}``; its points are the cartesian product in the grid's key order (the
last key varies fastest, as ``itertools.product``). An explicit list of overrides gives the
points one by one. Each point is ``{"index", "overrides": {path: value}, "spec": dict}``.

Paths are checked against the TrainSpec's pydantic models, not just against the base dict:
a path that exists nowhere (``kl.schedule.betaa``) is reported once, as ``grid.<path>``, with
the keys that level accepts. Paths inside a discriminated union (``kl.schedule``,
``model``, ``dataset``, ``likelihood``) are resolved with the union member each point selects,
so ``kl.schedule.kind: [constant, capacity]`` works, and so do parameters that the selected
kind has.

Switching a union's kind: when an override sets a discriminator (``kl.schedule.kind``) to a
kind other than the base's, the base's parameters of that section that the new kind does not
accept are dropped (``beta`` of ``constant`` when switching to ``capacity``); those it accepts
(``latent_dim`` when switching ``model.arch``) are kept. Overrides are applied shallowest
first and a section's discriminator before its other keys, so a whole-section value
(``kl.schedule: [{kind: constant, beta: 1}, {kind: capacity, c_max: 25}]``) can be refined by
deeper paths.

:func:`validate_points` parses every point with :func:`vae_engine.spec.parse_spec` and
raises one :class:`SpecError` naming every bad path at once (STYLE rule 4).
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import math
import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from vae_engine.errors import SpecError
from vae_engine.spec import TrainSpec, parse_spec

log = logging.getLogger(__name__)

MAX_POINTS = 256
_SHOWN_POINTS = 8  # point indices quoted in one error message before "and N more"


# --------------------------------------------------------------------------- the spec's shape


@dataclass(frozen=True)
class _Node:
    """What a path can step into: one pydantic section or a union of them (empty = a value)."""

    members: tuple[type[BaseModel], ...]
    tag: str | None = None  # discriminator field of a union ("kind", "arch", "name")
    default: type[BaseModel] | None = None  # member used when the spec leaves the section out


def _model_members(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold, through Annotated, Optional and unions."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _model_members(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [m for a in get_args(annotation) for m in _model_members(a)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _tag_field(members: list[type[BaseModel]]) -> str | None:
    """The Literal field that every member of a union has (its discriminator)."""
    if len(members) < 2:
        return None
    common = set.intersection(*(set(m.model_fields) for m in members))
    # Other Literal fields can be common to every member too (dataset.binarize): prefer the
    # spec's discriminator names.
    for name in [t for t in _TAGS if t in common] + sorted(common - set(_TAGS)):
        if all(get_origin(m.model_fields[name].annotation) is Literal for m in members):
            return name
    return None


def _tag_of(cls: type[BaseModel], tag: str | None) -> Any:
    return cls.model_fields[tag].default if tag else None


def _node_of(field: FieldInfo) -> _Node:
    members = _model_members(field.annotation)
    default = None
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        default = type(value) if isinstance(value, BaseModel) else None
    elif isinstance(field.default, BaseModel):
        default = type(field.default)
    if default is None and len(members) == 1:
        default = members[0]
    return _Node(tuple(members), _tag_field(members), default)


_ROOT = _Node((TrainSpec,), None, TrainSpec)


def _keys(cls: type[BaseModel]) -> dict[str, str]:
    """Accepted key (alias or name) -> field name."""
    out = {}
    for name, f in cls.model_fields.items():
        out[name] = name
        if f.alias:
            out[f.alias] = name
    return out


def _shown_keys(cls: type[BaseModel]) -> list[str]:
    return sorted(f.alias or name for name, f in cls.model_fields.items())


def _pick(node: _Node, here: Any) -> type[BaseModel] | None:
    """The member a (merged) spec dict selects at this node; None if it names no valid one."""
    if len(node.members) == 1:
        return node.members[0]
    if isinstance(here, dict) and node.tag in here:
        for m in node.members:
            if _tag_of(m, node.tag) == here[node.tag]:
                return m
        return None
    return node.default


@dataclass
class _PathProblem:
    level: str  # dotted path of the section, "" for the top level
    key: str
    selected: tuple[str, Any] | None  # ("kind", "constant") when the level is a union
    valid: list[str]
    elsewhere: list[str]  # tags of the union members that do have the key
    leaf: bool = False  # the path steps into a value

    @property
    def static(self) -> bool:
        """True if the path is bad whatever kinds the point selects."""
        return self.leaf or not self.elsewhere


def _walk(parts: list[str], data: Any, upto: int | None = None) -> tuple[Any, Any]:
    """Follow ``parts`` through the spec's models, picking union members from ``data``.

    Returns (canonical dotted path or the node after ``upto`` parts, None) or
    (None, _PathProblem).
    """
    node, here, canon = _ROOT, data, []
    stop = len(parts) if upto is None else upto
    for part in parts[:stop]:
        level = ".".join(canon)
        if not node.members:
            return None, _PathProblem(level, part, None, [], [], leaf=True)
        cls = _pick(node, here)
        candidates = [cls] if cls is not None else list(node.members)
        owner = next((m for m in candidates if part in _keys(m)), None)
        if owner is None:
            shown = cls or node.default or node.members[0]
            selected = (node.tag, _tag_of(shown, node.tag)) if node.tag else None
            elsewhere = [str(_tag_of(m, node.tag)) for m in node.members if part in _keys(m)]
            return None, _PathProblem(level, part, selected, _shown_keys(shown), elsewhere)
        name = _keys(owner)[part]
        field = owner.model_fields[name]
        canon.append(field.alias or name)
        node = _node_of(field)
        here = here.get(part) if isinstance(here, dict) else None
    return (".".join(canon) if upto is None else node), None


def _split(path: Any) -> list[str] | None:
    if not isinstance(path, str) or not path:
        return None
    parts = path.split(".")
    return parts if all(parts) else None


# --------------------------------------------------------------------------- applying overrides


def _get(spec: dict[str, Any], parts: list[str]) -> Any:
    cur: Any = spec
    for p in parts:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def _set(spec: dict[str, Any], parts: list[str], value: Any) -> None:
    cur = spec
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):  # absent or None (an optional section): create it
            nxt = cur[p] = {}
        cur = nxt
    cur[parts[-1]] = copy.deepcopy(value)


def _switch_kind(spec: dict[str, Any], parts: list[str], value: Any) -> None:
    """Drop the section's keys the new kind does not accept, if ``parts`` is a discriminator."""
    node, problem = _walk(parts, spec, upto=len(parts) - 1)
    if problem is not None or len(node.members) < 2 or parts[-1] != node.tag:
        return
    section = _get(spec, parts[:-1])
    if not isinstance(section, dict):
        return
    current = section.get(node.tag, _tag_of(node.default, node.tag) if node.default else None)
    new = next((m for m in node.members if _tag_of(m, node.tag) == value), None)
    if current == value or new is None:
        return
    accepted = _keys(new)
    dropped = [k for k in section if k not in accepted]
    for k in dropped:
        del section[k]
    if dropped:
        log.debug("%s=%r drops %s of kind %r", ".".join(parts), value, dropped, current)


_TAGS = ("kind", "arch", "name")  # the spec's discriminator fields


def _is_tag_path(path: str) -> bool:
    parts = path.split(".")
    return len(parts) > 1 and parts[-1] in _TAGS


def _order(path: str) -> tuple[int, int]:
    return len(path.split(".")), 0 if _is_tag_path(path) else 1


def apply_point(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with every ``{dotted.path: value}`` of ``overrides`` set."""
    spec = copy.deepcopy(base)
    for path in sorted(overrides, key=_order):  # stable: ties keep the caller's order
        parts = path.split(".")
        _switch_kind(spec, parts, overrides[path])
        _set(spec, parts, overrides[path])
    return spec


def _check_base(base: Any) -> None:
    if not isinstance(base, dict):
        raise SpecError([{"field": "base", "message": "the base spec must be a mapping"}])


def _too_many(field: str, n: int, max_points: int, detail: str = "") -> dict[str, str]:
    return {"field": field, "message": f"{n} points{detail} exceed the limit of {max_points}; "
            "split the sweep or vary fewer values"}


def expand_grid(
    base: dict[str, Any], grid: dict[str, list[Any]], max_points: int = MAX_POINTS
) -> list[dict[str, Any]]:
    """The cartesian product of ``grid`` over ``base``: one point per combination.

    Order: ``itertools.product`` over the grid's keys in their given order (the last key
    varies fastest). Raises SpecError for a malformed grid (empty, a key that is not a
    dotted path, a value that is not a non-empty list, more than ``max_points`` points).
    Paths are not checked against the spec here: see :func:`validate_points`.
    """
    _check_base(base)
    if not isinstance(grid, dict) or not grid:
        raise SpecError([{"field": "grid", "message": "the grid is empty: give at least one "
                          "dotted spec path with a list of values"}])
    errors = []
    for path, values in grid.items():
        if _split(path) is None:
            errors.append({"field": f"grid.{path}", "message": "not a dotted spec path "
                           "(e.g. 'kl.schedule.beta')"})
        elif not isinstance(values, list | tuple):
            errors.append({"field": f"grid.{path}", "message": "must be a list of values, got "
                           f"{type(values).__name__}"})
        elif not values:
            errors.append({"field": f"grid.{path}", "message": "has no values; give at least "
                           "one (a fixed value belongs in the base spec)"})
    if errors:
        raise SpecError(errors)
    sizes = [len(v) for v in grid.values()]
    n = math.prod(sizes)
    if n > max_points:
        raise SpecError([_too_many("grid", n, max_points, f" ({' x '.join(map(str, sizes))})")])
    paths = list(grid)
    points = []
    for i, combo in enumerate(itertools.product(*grid.values())):
        overrides = dict(zip(paths, combo, strict=True))
        points.append({"index": i, "overrides": copy.deepcopy(overrides),
                       "spec": apply_point(base, overrides)})
    return points


def apply_overrides(
    base: dict[str, Any], overrides: list[dict[str, Any]], max_points: int = MAX_POINTS
) -> list[dict[str, Any]]:
    """One point per entry of an explicit list of ``{dotted.path: value}`` overrides."""
    _check_base(base)
    if not isinstance(overrides, list) or not overrides:
        raise SpecError([{"field": "overrides", "message": "the list of overrides is empty: "
                          "give at least one point"}])
    if len(overrides) > max_points:
        raise SpecError([_too_many("overrides", len(overrides), max_points)])
    errors = []
    for i, point in enumerate(overrides):
        if not isinstance(point, dict):
            errors.append({"field": f"overrides[{i}]", "message": "must be a mapping of dotted "
                           "spec paths to values"})
            continue
        errors += [{"field": f"overrides[{i}].{p}", "message": "not a dotted spec path "
                    "(e.g. 'kl.schedule.beta')"} for p in point if _split(p) is None]
    if errors:
        raise SpecError(errors)
    return [{"index": i, "overrides": copy.deepcopy(o), "spec": apply_point(base, o)}
            for i, o in enumerate(overrides)]


# --------------------------------------------------------------------------- validation


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
    above = sorted((p for p, c in canon.items() if c.startswith(field + ".")), key=_order)
    if above:
        return above[0]
    # a key kept from the base after an override switched its section's kind
    switched = [p for p, c in canon.items() if _is_tag_path(c) and field.startswith(
        c.rsplit(".", 1)[0] + ".")]
    return switched[0] if switched else None


def _kind(selected: tuple[str, Any] | None) -> str:
    return f"{selected[0]} {selected[1]!r}" if selected else ""


def _problem_message(p: _PathProblem) -> str:
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


def _static_message(problems: list[_PathProblem]) -> str:
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
    static: dict[str, list[_PathProblem]] = {}
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
            c, problem = _walk(path.split("."), spec)
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


def build_sweep(
    base: dict[str, Any], grid: dict[str, list[Any]] | None = None,
    overrides: list[dict[str, Any]] | None = None, max_points: int = MAX_POINTS,
) -> list[dict[str, Any]]:
    """Expand and validate a sweep; each point's ``spec`` is the resolved spec (JSON dict).

    Exactly one of ``grid`` and ``overrides`` must be given.
    """
    if (grid is None) == (overrides is None):
        raise SpecError([{"field": "grid", "message": "give either a grid or a list of "
                          "overrides (exactly one)"}])
    if grid is not None:
        points, source = expand_grid(base, grid, max_points), "grid"
    else:
        points, source = apply_overrides(base, overrides or [], max_points), "overrides"
    specs = validate_points(points, source)
    return [{**pt, "spec": s.model_dump(mode="json")} for pt, s in zip(points, specs, strict=True)]


__all__ = ["MAX_POINTS", "apply_overrides", "apply_point", "build_sweep", "expand_grid",
           "validate_points"]
