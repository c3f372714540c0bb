"""Spec fields whose choices come from a registry: discriminated unions and string choices.

A field annotated ``Annotated[ComponentConfig, RegistryUnion(SCHEMES)]`` validates as the
tagged union of the configs registered at the time the model's schema is built, keyed by
the registry's tag (``kind``, ``arch``, ``name``): the same core schema pydantic builds for
``Field(discriminator="kind")`` over a hand-written union, so error locations, messages and
the JSON schema (``oneOf`` + ``discriminator.mapping``) are those of a hand-written union.
``RegistryChoice`` does the same for a plain string field (``kl.estimator``).

The schema is built once per model; :func:`vae_engine.spec.train.rebuild` rebuilds the spec
models when a registry changes, so a component registered at run time validates at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, GetCoreSchemaHandler
from pydantic.fields import FieldInfo
from pydantic_core import core_schema

from vae_engine.registry import ComponentConfig, Registry


@dataclass(frozen=True)
class RegistryUnion:
    """The configs of ``registry`` (those ``where`` accepts) as one spec field.

    ``discriminator``: a callable that finds the tag when the spec may omit it (see
    ``kl.balancing``); by default the registry's tag field. ``optional``: ``None`` allowed.
    One untagged member validates as that model alone (``kl.free_bits``).
    """

    registry: Registry[Any]
    where: Callable[[type[ComponentConfig]], bool] | None = None
    discriminator: Callable[[Any], str | None] | None = None
    optional: bool = False

    def members(self) -> list[type[ComponentConfig]]:
        configs = self.registry.configs()
        return [c for c in configs if self.where is None or self.where(c)]

    @property
    def tag(self) -> str | None:
        members = self.members()
        tag = self.registry.tag or "kind"  # untagged registries (modifiers) use "kind"
        return tag if members and all(tag in m.model_fields for m in members) else None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        members = self.members()
        tag = self.tag
        if tag is None and len(members) == 1:
            schema = handler.generate_schema(members[0])
        else:
            choices = {str(m.model_fields[tag].default): handler.generate_schema(m)
                       for m in members}
            schema = core_schema.tagged_union_schema(
                choices, discriminator=self.discriminator or tag
            )
        return core_schema.nullable_schema(schema) if self.optional else schema


@dataclass(frozen=True)
class RegistryChoice:
    """A string field whose allowed values are the names registered in ``registry``."""

    registry: Registry[Any]

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # registration order, as a Literal[...] over the names would list them
        return core_schema.literal_schema([e.name for e in self.registry.entries()])


def registry_marker(field: FieldInfo) -> RegistryUnion | RegistryChoice | None:
    """The RegistryUnion/RegistryChoice of a model field, if it has one."""
    return next((m for m in field.metadata if isinstance(m, RegistryUnion | RegistryChoice)),
                None)


def tagged_unions(root: type[BaseModel]) -> dict[str, str]:
    """Field name -> discriminator of every tagged registry union in ``root`` and the
    sections nested in it (``{"dataset": "name", ..., "schedule": "kind"}``)."""
    out: dict[str, str] = {}
    todo = [root]
    while todo:
        model = todo.pop()
        for name, field in model.model_fields.items():
            marker = registry_marker(field)
            if isinstance(marker, RegistryUnion) and marker.tag is not None:
                out[name] = marker.tag
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel) and marker is None:
                todo.append(ann)  # a plain nested section (kl, optim, ...)
    return out


def union_members(field: FieldInfo) -> list[type[ComponentConfig]] | None:
    """The configs a registry-union field holds now; None for other fields."""
    marker = registry_marker(field)
    return marker.members() if isinstance(marker, RegistryUnion) else None
