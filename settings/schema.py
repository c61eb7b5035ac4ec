"""The constructor signature is the schema.

``validate`` checks a YAML spec against the registered constructor (unknown keys, missing keys,
scalar types, ranges, nested component specs), injects env values, fills defaults and returns
the fully resolved spec (plain data). ``build`` turns a resolved spec into objects.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import inspect
import types
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Callable, Generic, Literal, TypeVar, Union

from settings.errors import ConfigError, ConfigIssue, format_value
from settings.paths import join_path
from settings.registry import Registry, registry_for

T = TypeVar("T")


class Factory(Generic[T]):
    """A validated spec built later, when its runtime arguments exist (``Factory[Optimizer]``).

    ``factory(params=model.parameters())`` builds the component.
    """

    def __init__(self, registry: Registry, spec: dict, path: str):
        self.registry = registry
        self.spec = spec
        self.path = path

    @property
    def type_name(self) -> str:
        return self.spec["type"]

    def __call__(self, **runtime: Any) -> T:
        return build(self.spec, self.registry, self.path, **runtime)

    def __repr__(self) -> str:
        return f"Factory({self.registry.kind}: {self.spec!r})"


# --- range constraints used inside typing.Annotated ---------------------------------------
@dataclass(frozen=True)
class Gt:
    bound: float

    def ok(self, v: float) -> bool:
        return v > self.bound

    def __str__(self) -> str:
        return f"> {_bound(self.bound)}"


@dataclass(frozen=True)
class Ge(Gt):
    def ok(self, v: float) -> bool:
        return v >= self.bound

    def __str__(self) -> str:
        return f">= {_bound(self.bound)}"


@dataclass(frozen=True)
class Lt(Gt):
    def ok(self, v: float) -> bool:
        return v < self.bound

    def __str__(self) -> str:
        return f"< {_bound(self.bound)}"


@dataclass(frozen=True)
class Le(Gt):
    def ok(self, v: float) -> bool:
        return v <= self.bound

    def __str__(self) -> str:
        return f"<= {_bound(self.bound)}"


def _bound(value: float) -> str:
    """Integers exactly (a seed bound of 2**63 shows every digit), floats short."""
    return str(value) if isinstance(value, int) else f"{value:g}"


PositiveInt = Annotated[int, Gt(0)]
NonNegativeInt = Annotated[int, Ge(0)]
PositiveFloat = Annotated[float, Gt(0)]
NonNegativeFloat = Annotated[float, Ge(0)]
UnitInterval = Annotated[float, Ge(0), Le(1)]


# --- parameter tables ------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    name: str
    annotation: Any  # inspect.Parameter.empty when unknown
    default: Any  # inspect.Parameter.empty when required

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


@dataclass(frozen=True)
class Signature:
    params: dict[str, Param]
    open: bool  # accepts **kwargs


@lru_cache(maxsize=None)
def signature_of(entry: Callable) -> Signature:
    target = entry.__init__ if isinstance(entry, type) else entry
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # third-party signatures (torch.optim) may hold unresolvable hints
        hints = {}
    params: dict[str, Param] = {}
    is_open = False
    for p in inspect.signature(entry).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            is_open = True
            continue
        if p.kind is p.VAR_POSITIONAL or p.name == "self":
            continue
        params[p.name] = Param(p.name, hints.get(p.name, inspect.Parameter.empty), p.default)
    return Signature(params, is_open)


def describe_type(tp: Any) -> str:
    """Human text for an annotation: ``an integer > 0``, ``one of 'soft', 'hard'``."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *meta = typing.get_args(tp)
        bounds = " and ".join(str(m) for m in meta if isinstance(m, Gt))
        return describe_type(base) + (f" {bounds}" if bounds else "")
    if origin is Literal:
        return "one of " + ", ".join(format_value(c) for c in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(describe_type(a) for a in typing.get_args(tp))
    if origin in (list, tuple, typing.Sequence, collections.abc.Sequence):
        return "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    if origin is Factory:
        tp = typing.get_args(tp)[0]
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    if tp in names:
        return names[tp]
    registry = registry_for(tp)
    if registry is not None:
        article = "an" if registry.singular[:1] in "aeiou" else "a"
        return f"{article} {registry.singular} spec, one of: {', '.join(registry.names())}"
    return getattr(tp, "__name__", str(tp))


class _Checker:
    """Collects issues while resolving one spec tree."""

    def __init__(self, env: dict[str, Any] | None):
        self.env = {k: v for k, v in (env or {}).items() if v is not None}
        self.issues: list[ConfigIssue] = []

    def fail(self, path: str, message: str) -> None:
        self.issues.append(ConfigIssue(path, message))

    # -- component specs --
    def component(self, spec: Any, registry: Registry, path: str) -> Any:
        if isinstance(spec, str):
            spec = {"type": spec}
        if spec is None and registry.default is not None:
            spec = {}
        if not isinstance(spec, dict):
            self.fail(path, f"must be a {registry.singular} spec (a mapping with 'type:'), got {format_value(spec)}")
            return spec
        name = spec.get("type", registry.default)
        if name is None:
            self.fail(join_path(path, "type"), f"is missing: say which {registry.singular} (valid: "
                      f"{', '.join(registry.names())})")
            return spec
        if name not in registry:
            self.fail(join_path(path, "type"), registry.unknown_message(name))
            return spec
        resolved = self.fields(spec, registry.get(name), name, path, registry.runtime, registry.singular)
        return {"type": name, **resolved}

    def fields(self, spec: dict, entry: Callable, name: str, path: str,
               runtime: tuple[str, ...] = (), kind: str = "component") -> dict[str, Any]:
        """Check the keys of ``spec`` against ``entry``'s signature; fill env values and defaults."""
        sig = signature_of(entry)
        before = len(self.issues)
        resolved: dict[str, Any] = {}
        for key in spec:
            if key == "type":
                continue
            if key in runtime:
                self.fail(join_path(path, key), f"is set at run time for a {kind}; remove it")
            elif key not in sig.params and not sig.open:
                allowed = [p for p in sig.params if p not in runtime]
                close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.fail(join_path(path, key), f"is not a parameter of {name}{hint}; allowed: "
                          f"{', '.join(allowed) or 'none'}")
        for pname, param in sig.params.items():
            if pname in runtime:
                continue
            ppath = join_path(path, pname)
            if pname in spec:
                resolved[pname] = self.value(spec[pname], param, ppath)
            elif pname in self.env:
                resolved[pname] = self.value(self.env[pname], param, ppath)
            elif param.required:
                self.fail(ppath, f"is missing: {name} requires it ({describe_type(param.annotation)})")
            else:
                resolved[pname] = self.default(param, ppath)
        if sig.open:
            resolved.update({k: v for k, v in spec.items() if k not in sig.params and k != "type"})
        check = getattr(entry, "check_params", None)
        if check is not None and len(self.issues) == before:
            for key, message in check(resolved):
                self.fail(join_path(path, key) if key else path, message)
        return resolved

    def default(self, param: Param, path: str) -> Any:
        value = param.default
        registry = _component_registry(param.annotation)
        if registry is not None and value is not None:
            return self.value(value, param, path)
        if isinstance(value, tuple):
            return list(value)
        return value

    # -- values --
    def value(self, value: Any, param: Param, path: str) -> Any:
        tp = param.annotation
        if tp is inspect.Parameter.empty:
            # unannotated (third-party) parameter: a scalar default tells the type
            default = param.default
            if not isinstance(default, (bool, int, float, str)):
                return list(value) if isinstance(value, tuple) else value
            tp = (int | float) if type(default) is int else type(default)
        return self.check(value, tp, path)

    def check(self, value: Any, tp: Any, path: str) -> Any:
        origin = typing.get_origin(tp)
        if tp is Any or tp is object:
            return value
        if origin is Annotated:
            base, *meta = typing.get_args(tp)
            trial = _Checker(self.env)
            out = trial.check(value, base, path)
            if trial.issues:
                self.fail(path, f"must be {describe_type(tp)}, got {format_value(value)}")
                return value
            if isinstance(out, (int, float)) and not isinstance(out, bool):
                for m in meta:
                    if isinstance(m, Gt) and not m.ok(out):
                        self.fail(path, f"must be {describe_type(tp)}, got {format_value(value)}")
                        break
            return out
        if origin in (Union, types.UnionType):
            members = typing.get_args(tp)
            if value is None and type(None) in members:
                return None
            for member in members:
                if member is type(None):
                    continue
                trial = _Checker(self.env)
                out = trial.check(value, member, path)
                if not trial.issues:
                    return out
            # report against the most specific member when only one non-null member exists
            real = [m for m in members if m is not type(None)]
            if len(real) == 1:
                return self.check(value, real[0], path)
            self.fail(path, f"must be {describe_type(tp)}, got {format_value(value)}")
            return value
        if origin is Literal:
            choices = typing.get_args(tp)
            if value not in choices or isinstance(value, bool) != any(isinstance(c, bool) for c in choices if c == value):
                close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.fail(path, f"must be {describe_type(tp)}, got {format_value(value)}{hint}")
            return value
        if origin is Factory:
            registry = _component_registry(tp)
            return self.component(value, registry, path)
        if origin in (list, tuple, collections.abc.Sequence):
            if not isinstance(value, (list, tuple)):
                self.fail(path, f"must be a list, got {format_value(value)}")
                return value
            args = typing.get_args(tp)
            if origin is tuple and args and args[-1] is not Ellipsis:
                if len(value) != len(args):
                    self.fail(path, f"must be a list of {len(args)} items, got {format_value(value)}")
                    return list(value)
                return [self.check(v, a, join_path(path, i)) for i, (v, a) in enumerate(zip(value, args))]
            item = args[0] if args else Any
            return [self.check(v, item, join_path(path, i)) for i, v in enumerate(value)]
        if origin is dict or tp is dict:
            if not isinstance(value, dict):
                self.fail(path, f"must be a mapping, got {format_value(value)}")
                return value
            args = typing.get_args(tp)
            if args:
                return {k: self.check(v, args[1], join_path(path, str(k))) for k, v in value.items()}
            return value
        if tp is bool:
            if not isinstance(value, bool):
                self.fail(path, f"must be true or false, got {format_value(value)}")
            return value
        if tp is int:
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(path, f"must be an integer, got {format_value(value)}")
            return value
        if tp is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(path, f"must be a number, got {format_value(value)}")
                return value
            return float(value)
        if tp is str:
            if not isinstance(value, str):
                self.fail(path, f"must be a string, got {format_value(value)}")
            return value
        if tp is type(None):
            if value is not None:
                self.fail(path, f"must be null, got {format_value(value)}")
            return value
        registry = registry_for(tp)
        if registry is not None:
            return self.component(value, registry, path)
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                self.fail(path, f"must be a mapping, got {format_value(value)}")
                return value
            return self.fields(value, tp, path.rsplit(".", 1)[-1] or tp.__name__, path)
        return value


def _component_registry(tp: Any) -> Registry | None:
    """The registry behind ``Base``, ``Factory[Base]``, ``Base | None`` (None otherwise)."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _component_registry(typing.get_args(tp)[0])
    if origin is Factory:
        return registry_for(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        for member in typing.get_args(tp):
            found = _component_registry(member)
            if found is not None:
                return found
        return None
    return registry_for(tp)


def validate(spec: Any, registry: Registry, path: str = "", env: dict[str, Any] | None = None) -> dict:
    """Resolve ``spec`` against ``registry``: returns the full spec or raises ConfigError (all issues)."""
    checker = _Checker(env)
    resolved = checker.component(spec, registry, path)
    if checker.issues:
        raise ConfigError(checker.issues)
    return resolved


def validate_fields(spec: Any, schema: Callable, path: str = "", label: str | None = None) -> dict:
    """Resolve a plain mapping (no ``type:``) against ``schema``'s signature; raise on problems."""
    checker = _Checker(None)
    if not isinstance(spec, dict):
        raise ConfigError(ConfigIssue(path, f"must be a mapping, got {format_value(spec)}"))
    resolved = checker.fields(spec, schema, label or schema.__name__, path)
    if checker.issues:
        raise ConfigError(checker.issues)
    return resolved


def check_value(value: Any, annotation: Any, path: str) -> list[ConfigIssue]:
    """Issues for ``value`` against a type annotation (used for the non-component YAML files)."""
    checker = _Checker(None)
    checker.check(value, annotation, path)
    return checker.issues


# --- building ------------------------------------------------------------------------------
def build(spec: dict, registry: Registry, path: str = "", **runtime: Any) -> Any:
    """Construct the component described by a *resolved* spec (see ``validate``)."""
    entry = registry.get(spec["type"], join_path(path, "type"))
    sig = signature_of(entry)
    kwargs: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "type":
            continue
        param = sig.params.get(key)
        kwargs[key] = _materialise(value, param.annotation if param else Any, join_path(path, key))
    kwargs.update(runtime)
    return entry(**kwargs)


def create(spec: Any, registry: Registry, path: str = "", **runtime: Any) -> Any:
    """Validate and build ``spec`` (a name, a mapping, or an already built object of the
    registry's base class, returned as it is)."""
    if registry.base is not None and isinstance(spec, registry.base):
        return spec
    return build(validate(spec, registry, path), registry, path, **runtime)


def _materialise(value: Any, tp: Any, path: str) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _materialise(value, typing.get_args(tp)[0], path)
    if origin in (Union, types.UnionType):
        for member in typing.get_args(tp):
            if member is type(None):
                continue
            reg = _component_registry(member)
            if (reg is not None or dataclasses.is_dataclass(member)) and isinstance(value, dict):
                return _materialise(value, member, path)
            if typing.get_origin(member) in (list, tuple) and isinstance(value, list):
                return _materialise(value, member, path)
        return value
    if origin is Factory:
        return Factory(_component_registry(tp), value, path)
    if origin in (list, tuple, collections.abc.Sequence) and isinstance(value, list):
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            return tuple(_materialise(v, a, join_path(path, i)) for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_materialise(v, item, join_path(path, i)) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    registry = registry_for(tp)
    if registry is not None and isinstance(value, dict):
        if registry.runtime:
            return Factory(registry, value, path)
        return build(value, registry, path)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):  # a plain settings record (Selection)
        return tp(**value)
    return value
