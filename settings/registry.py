"""The registry: the only place a YAML ``type:`` name meets a class.

One ``Registry`` instance per kind of component (kernels, layers, losses, ...). A class joins
with ``@KIND.register``; its key is the class name, and a duplicate key fails at import. A
registry only names constructors: ``settings.schema`` validates specs against them and builds
them (``create``, ``Factory``).
"""
from __future__ import annotations

import difflib
from typing import Any, Callable, Generic, Iterator, TypeVar

from settings.errors import ConfigError, ConfigIssue, format_value

T = TypeVar("T")

ALL_REGISTRIES: dict[str, "Registry"] = {}


class Registry(Generic[T]):
    """A closed set of named constructors of one kind.

    Args:
        kind: plural name used in messages and docs ("kernels").
        runtime: constructor arguments supplied by the caller at build time (never in YAML);
            a nested spec of a kind with runtime arguments is built lazily as a ``Factory``.
        default: the ``type`` used when a spec of this kind omits it.
    """

    def __init__(self, kind: str, *, runtime: tuple[str, ...] = (), default: str | None = None,
                 singular: str | None = None):
        if kind in ALL_REGISTRIES:
            raise RuntimeError(f"registry {kind!r} defined twice")
        self.kind = kind
        self.singular = singular or (kind[:-1] if kind.endswith("s") else kind)
        self.runtime = runtime
        self.default = default
        self.base: type | None = None
        self._entries: dict[str, Callable[..., T]] = {}
        ALL_REGISTRIES[kind] = self

    def set_base(self, cls: type) -> type:
        """Decorator for the abstract base class: parameters annotated with it are specs of this kind."""
        self.base = cls
        return cls

    def register(self, obj: Callable[..., T] | None = None, *, name: str | None = None) -> Any:
        """Decorator (``@KERNELS.register``) or call (``KERNELS.register(fn, name="Adam")``)."""

        def add(target: Callable[..., T]) -> Callable[..., T]:
            key = name or target.__name__
            if key in self._entries:
                raise RuntimeError(f"{self.kind}: {key!r} is registered twice")
            self._entries[key] = target
            return target

        return add(obj) if obj is not None else add

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[tuple[str, Callable[..., T]]]:
        return iter(sorted(self._entries.items()))

    def get(self, name: Any, path: str = "type") -> Callable[..., T]:
        """The constructor registered as ``name``; unknown names list the valid ones."""
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        raise ConfigError(ConfigIssue(path, self.unknown_message(name)))

    def unknown_message(self, name: Any) -> str:
        valid = self.names()
        hint = ""
        if isinstance(name, str):
            lowered = {n.lower(): n for n in valid}
            close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
            guess = lowered.get(name.lower()) or (close[0] if close else None)
            hint = f" (did you mean {guess!r}?)" if guess else ""
        return f"is not a known {self.singular}: got {format_value(name)}{hint}; valid: {', '.join(valid)}"


def registry_for(annotation: Any) -> Registry | None:
    """The registry whose base class is ``annotation`` (or a parent of it), if any."""
    if not isinstance(annotation, type):
        return None
    for registry in ALL_REGISTRIES.values():
        if registry.base is annotation:
            return registry
    for registry in ALL_REGISTRIES.values():
        if registry.base is not None and issubclass(annotation, registry.base):
            return registry
    return None

