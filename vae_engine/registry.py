"""A tiny name-keyed registry for the engine's extension points.

Adding a component = one module that defines it + one ``REGISTRY.register("name")(cls)`` line.
Unknown names fail with the list of valid ones; dotted paths from user input are never
imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from vae_engine.errors import SpecError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str):
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.what} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str, field: str | None = None) -> T:
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items))
            raise SpecError(
                [{"field": field or self.what, "message": f"unknown {self.what} {name!r}; "
                  f"valid: {valid}"}]
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(sorted(self._items.items()))

    def __contains__(self, name: str) -> bool:
        return name in self._items
