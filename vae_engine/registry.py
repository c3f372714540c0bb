"""Name-keyed registries for the engine's extension points, and the config base classes.

A component is one config model (pydantic, ``extra="forbid"``: its ``kind``/``name``/``arch``
literal, parameters with bounds and descriptions, and class-level metadata: paper, summary,
warm-up and stateful flags) plus one implementation, registered together by one call::

    class ConstantSchedule(ComponentConfig):
        kind: Literal["constant"] = "constant"
        beta: float = Field(default=1.0, ge=0, description="The KL weight beta.")

    @SCHEMES.register(ConstantSchedule)
    class Constant(KLScheme): ...

The registry is the only list of components: the spec's discriminated unions, the catalogue,
the docs and the tests' parametrizations are derived from it (STYLE rule 3, after torchtune's
component builders and pyro's ``register_kl``). Registering or unregistering notifies
listeners, so the spec rebuilds its unions and a component added at run time (by a test, a
notebook) validates like a built-in one. Unknown names fail with the list of valid ones;
dotted paths from user input are never imported.

This module imports only pydantic: every config module, and hence ``vae_engine.spec``, stays
importable without torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from vae_engine.errors import SpecError

T = TypeVar("T")


class Section(BaseModel):
    """Base of every spec section: a typo in a key is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")

    # Fields of this section that name a file on the host (a user's data): the service
    # confines them to its dataset root, whatever the component is called.
    user_file_fields: ClassVar[tuple[str, ...]] = ()


class ComponentConfig(Section):
    """Config of one registered component, with the metadata the catalogue shows."""

    paper: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one line; the docstring's first line when empty
    warmup: ClassVar[bool] = False  # KL schedules with a warm-up phase (NVAE balancing)
    stateful: ClassVar[bool] = False  # controllers whose state goes into checkpoints
    # Parameter sets that exercise the component (the registry-wide contract tests build one
    # instance per example); () when it cannot be built without a user's file.
    examples: ClassVar[tuple[dict[str, Any], ...]] = ({},)

    @classmethod
    def one_line(cls) -> str:
        if cls.summary:
            return cls.summary
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    def problems(self, spec: Any) -> list[str]:
        """Cross-field problems with the whole ``spec`` (a TrainSpec), each
        ``"<dotted.field>: <message>"``; empty when the combination makes sense."""
        return []


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    config: type[ComponentConfig]
    impl: T


class Registry(Generic[T]):
    """Components of one kind, in registration order (which is the spec's union order).

    ``tag`` is the config field holding the component's name (``kind``, ``arch``, ``name``);
    ``field`` is where it sits in a spec, for error messages.
    """

    def __init__(self, what: str, tag: str | None = None, field: str | None = None):
        self.what = what
        self.tag = tag
        self.field = field
        self._entries: dict[str, Entry[T]] = {}
        self._listeners: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ registration

    def name_of(self, config: type[ComponentConfig]) -> str:
        if self.tag is None and hasattr(config, "key"):  # untagged configs name themselves
            return str(config.key())
        if self.tag is None or self.tag not in config.model_fields:
            raise TypeError(f"{config.__name__} has no {self.tag!r} field naming the {self.what}")
        return str(config.model_fields[self.tag].default)

    def register(self, config: type[ComponentConfig], name: str | None = None) -> Callable[[T], T]:
        """Decorator registering ``impl`` with its ``config`` under the config's tag value."""
        key = name if name is not None else self.name_of(config)

        def deco(impl: T) -> T:
            if key in self._entries:
                raise ValueError(f"{self.what} {key!r} registered twice")
            self._entries[key] = Entry(key, config, impl)
            self._changed()
            return impl

        return deco

    def unregister(self, name: str) -> None:
        del self._entries[name]
        self._changed()

    @contextmanager
    def registered(
        self, config: type[ComponentConfig], impl: T, name: str | None = None
    ) -> Iterator[T]:
        """Register for the duration of a ``with`` block (tests, notebooks), then undo it."""
        self.register(config, name)(impl)
        key = name if name is not None else self.name_of(config)
        try:
            yield impl
        finally:
            self.unregister(key)

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    # ------------------------------------------------------------------ look-up

    def get(self, name: str, field: str | None = None) -> T:
        """The implementation registered under ``name``; SpecError listing valid names."""
        return self.entry(name, field).impl

    def config(self, name: str, field: str | None = None) -> type[ComponentConfig]:
        return self.entry(name, field).config

    def entry(self, name: str, field: str | None = None) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries))
            raise SpecError(
                [{"field": field or self.field or self.what,
                  "message": f"unknown {self.what} {name!r}; valid: {valid}"}]
            ) from None

    def entries(self) -> list[Entry[T]]:
        """Every entry, in registration order."""
        return list(self._entries.values())

    def configs(self) -> list[type[ComponentConfig]]:
        return [e.config for e in self._entries.values()]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(sorted((k, e.impl) for k, e in self._entries.items()))

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
