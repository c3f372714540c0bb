"""Sweeps: expand a base spec and a grid (or a list of overrides) into one spec per point.

A grid maps dotted spec paths to value lists, ``{"kl.schedule.beta": [0.1, 1, 10],
"train.seed": [0, 1, 2]}``; its points are the cartesian product in the grid's key order (the
last key varies fastest, as ``itertools.product``). An explicit list of overrides gives the
points one by one. Each point is ``{"index", "overrides": {path: value}, "spec": dict}``.

Paths are checked against the TrainSpec's pydantic models (sweep_paths.py), not just against
the base dict: a path that exists nowhere (``kl.schedule.betaa``) is reported once, as
``grid.<path>``, with the keys that level accepts. Paths inside a discriminated union
(``kl.schedule``, ``model``, ``dataset``, ``likelihood``) are resolved with the union member
each point selects, so ``kl.schedule.kind: [constant, capacity]`` works, and so do parameters
that the selected kind has.

Switching a union's kind: when an override sets a discriminator (``kl.schedule.kind``) to a
kind other than the base's, the base's parameters of that section that the new kind does not
accept are dropped (``beta`` of ``constant`` when switching to ``capacity``); those it accepts
(``latent_dim`` when switching ``model.arch``) are kept. Overrides are applied shallowest
first and a section's discriminator before its other keys, so a whole-section value
(``kl.schedule: [{kind: constant, beta: 1}, {kind: capacity, c_max: 25}]``) can be refined by
deeper paths.

``validate_points`` (sweep_errors.py) parses every point with :func:`vae_engine.spec.parse_spec` and
raises one :class:`SpecError` naming every bad path at once (STYLE rule 4).
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
from typing import Any

from vae_engine.errors import SpecError
from vae_engine.spec.sweep_errors import validate_points
from vae_engine.spec.sweep_paths import accepted_keys, apply_order, split_path, tag_of, walk

log = logging.getLogger(__name__)

MAX_POINTS = 256


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
    node, problem = walk(parts, spec, upto=len(parts) - 1)
    if problem is not None or len(node.members) < 2 or parts[-1] != node.tag:
        return
    section = _get(spec, parts[:-1])
    if not isinstance(section, dict):
        return
    current = section.get(node.tag, tag_of(node.default, node.tag) if node.default else None)
    new = next((m for m in node.members if tag_of(m, node.tag) == value), None)
    if current == value or new is None:
        return
    accepted = accepted_keys(new)
    dropped = [k for k in section if k not in accepted]
    for k in dropped:
        del section[k]
    if dropped:
        log.debug("%s=%r drops %s of kind %r", ".".join(parts), value, dropped, current)


def apply_point(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with every ``{dotted.path: value}`` of ``overrides`` set."""
    spec = copy.deepcopy(base)
    for path in sorted(overrides, key=apply_order):  # stable: ties keep the caller's order
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
        if split_path(path) is None:
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
                    "(e.g. 'kl.schedule.beta')"} for p in point if split_path(p) is None]
    if errors:
        raise SpecError(errors)
    return [{"index": i, "overrides": copy.deepcopy(o), "spec": apply_point(base, o)}
            for i, o in enumerate(overrides)]


# --------------------------------------------------------------------------- validation


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
