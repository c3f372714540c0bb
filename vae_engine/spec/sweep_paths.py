"""The shape of a TrainSpec, for sweeps: which dotted paths exist and what a union selects.

Paths are checked against the spec's pydantic models, not just against the base dict: a
path that exists nowhere (``kl.schedule.betaa``) is a problem with the keys that level
accepts. Paths inside a registry union (``kl.schedule``, ``model``, ``dataset``,
``likelihood``) are resolved with the member each point selects, so the union's members and
its tag come from the registry as it is now (a component registered at run time is
sweepable too).
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from vae_engine.spec.train import TrainSpec
from vae_engine.spec.unions import RegistryUnion, registry_marker, tagged_unions


@dataclass(frozen=True)
class Node:
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


def tag_of(cls: type[BaseModel], tag: str | None) -> Any:
    return cls.model_fields[tag].default if tag else None


def _node_of(field: FieldInfo) -> Node:
    marker = registry_marker(field)
    if isinstance(marker, RegistryUnion):  # members and tag from the registry, as it is now
        members, tag = marker.members(), marker.tag
    else:
        members, tag = _model_members(field.annotation), None
    default = None
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        default = type(value) if isinstance(value, BaseModel) else None
    elif isinstance(field.default, BaseModel):
        default = type(field.default)
    if default is None and len(members) == 1:
        default = members[0]
    return Node(tuple(members), tag if len(members) > 1 else None, default)


ROOT = Node((TrainSpec,), None, TrainSpec)


def accepted_keys(cls: type[BaseModel]) -> dict[str, str]:
    """Accepted key (alias or name) -> field name."""
    out = {}
    for name, f in cls.model_fields.items():
        out[name] = name
        if f.alias:
            out[f.alias] = name
    return out


def shown_keys(cls: type[BaseModel]) -> list[str]:
    return sorted(f.alias or name for name, f in cls.model_fields.items())


def _pick(node: Node, here: Any) -> type[BaseModel] | None:
    """The member a (merged) spec dict selects at this node; None if it names no valid one."""
    if len(node.members) == 1:
        return node.members[0]
    if isinstance(here, dict) and node.tag in here:
        for m in node.members:
            if tag_of(m, node.tag) == here[node.tag]:
                return m
        return None
    return node.default


@dataclass
class PathProblem:
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


def walk(parts: list[str], data: Any, upto: int | None = None) -> tuple[Any, Any]:
    """Follow ``parts`` through the spec's models, picking union members from ``data``.

    Returns (canonical dotted path or the node after ``upto`` parts, None) or
    (None, PathProblem).
    """
    node, here, canon = ROOT, data, []
    stop = len(parts) if upto is None else upto
    for part in parts[:stop]:
        level = ".".join(canon)
        if not node.members:
            return None, PathProblem(level, part, None, [], [], leaf=True)
        cls = _pick(node, here)
        candidates = [cls] if cls is not None else list(node.members)
        owner = next((m for m in candidates if part in accepted_keys(m)), None)
        if owner is None:
            shown = cls or node.default or node.members[0]
            selected = (node.tag, tag_of(shown, node.tag)) if node.tag else None
            elsewhere = [str(tag_of(m, node.tag)) for m in node.members if part in accepted_keys(m)]
            return None, PathProblem(level, part, selected, shown_keys(shown), elsewhere)
        name = accepted_keys(owner)[part]
        field = owner.model_fields[name]
        canon.append(field.alias or name)
        node = _node_of(field)
        here = here.get(part) if isinstance(here, dict) else None
    return (".".join(canon) if upto is None else node), None


def split_path(path: Any) -> list[str] | None:
    if not isinstance(path, str) or not path:
        return None
    parts = path.split(".")
    return parts if all(parts) else None


_TAGS = tuple(dict.fromkeys(tagged_unions(TrainSpec).values()))  # "name", "arch", "kind"


def is_tag_path(path: str) -> bool:
    parts = path.split(".")
    return len(parts) > 1 and parts[-1] in _TAGS


def apply_order(path: str) -> tuple[int, int]:
    return len(path.split(".")), 0 if is_tag_path(path) else 1


