"""Dot paths with list indices (``model.layers[0].kernel.tau_m``) and the deep merge.

Dicts merge key by key; a list is replaced whole unless an index path addresses one item.
"""
from __future__ import annotations

import copy
import re
from typing import Any

from settings.errors import ConfigError, ConfigIssue

_TOKEN = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")

Key = str | int


def parse_path(path: str) -> list[Key]:
    """``"a.b[0].c"`` -> ``["a", "b", 0, "c"]``; raises ValueError on malformed paths."""
    if not path or path.strip() != path:
        raise ValueError(f"malformed path {path!r}")
    keys: list[Key] = []
    pos = 0
    while pos < len(path):
        if path[pos] == "." and keys and pos + 1 < len(path) and path[pos + 1] != "[":
            pos += 1
        match = _TOKEN.match(path, pos)
        if not match:
            raise ValueError(f"malformed path {path!r}")
        name, index = match.groups()
        keys.append(int(index) if index is not None else name)
        pos = match.end()
    return keys


def format_path(keys: list[Key] | tuple[Key, ...]) -> str:
    """``["a", "b", 0, "c"]`` -> ``"a.b[0].c"``."""
    out = ""
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += f".{key}" if out else str(key)
    return out


def join_path(base: str, key: Key) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else str(key)


def get_path(tree: Any, path: str | list[Key]) -> Any:
    keys = parse_path(path) if isinstance(path, str) else path
    node = tree
    for key in keys:
        node = node[key]
    return node


def set_path(tree: dict, path: str, value: Any, *, create: bool = True) -> None:
    """Set ``value`` at ``path`` inside ``tree`` (in place).

    Missing dict keys are created when ``create`` is true; list indices must exist.
    Raises KeyError with the first missing part of the path otherwise.
    """
    keys = parse_path(path)
    node: Any = tree
    for depth, key in enumerate(keys[:-1]):
        nxt = keys[depth + 1]
        if isinstance(key, int):
            if not isinstance(node, list) or not -len(node) <= key < len(node):
                raise KeyError(format_path(keys[: depth + 1]))
            node = node[key]
            continue
        if not isinstance(node, dict):
            raise KeyError(format_path(keys[: depth + 1]))
        if key not in node or node[key] is None:
            if not create:
                raise KeyError(format_path(keys[: depth + 1]))
            node[key] = [] if isinstance(nxt, int) else {}
        node = node[key]
    last = keys[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or not -len(node) <= last < len(node):
            raise KeyError(format_path(keys))
        node[last] = value
    else:
        if not isinstance(node, dict):
            raise KeyError(format_path(keys))
        if not create and last not in node:
            raise KeyError(format_path(keys))
        node[last] = value


def deep_merge(base: Any, override: Any, where: str = "") -> Any:
    """Merge ``override`` onto ``base`` and return a new tree.

    Dicts merge recursively; everything else (lists included) is replaced, and so is a component
    whose ``type`` changes (its old parameters would not apply). Keys of ``override``
    that are index paths (``"layers[0].kernel"``, ``"optimizer.lr"``) address items inside
    ``base`` instead of replacing them. ``where``: the path of ``override`` inside a trial's
    ``settings``, for errors.
    """
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    if "type" in base and "type" in override and base["type"] != override["type"]:
        return copy.deepcopy(override)  # another component: the old one's parameters do not apply
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(key, str) and ("[" in key or "." in key):
            try:
                parse_path(key)
            except ValueError:
                raise ConfigError(ConfigIssue(join_path("settings", where) if where else "settings",
                                              f"has a malformed path key, got {key!r}; write dot paths with "
                                              "integer indices, such as model.layers[0].out_features")) from None
            try:
                current = get_path(merged, key)
            except (KeyError, IndexError, TypeError):
                current = None
            inner = join_path(where, key) if where else key
            try:
                set_path(merged, key, deep_merge(current, value, inner) if current is not None
                         else copy.deepcopy(value))
            except KeyError as exc:
                raise ConfigError(ConfigIssue(inner, f"does not exist (no {exc.args[0]!r} to merge into)")) from None
        elif key in merged:
            merged[key] = deep_merge(merged[key], value, join_path(where, str(key)))
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts/lists into ``{"a.b[0].c": leaf}``; empty containers stay as leaves."""
    if isinstance(tree, dict) and tree:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, join_path(prefix, str(key))))
        return out
    if isinstance(tree, list) and tree:
        out = {}
        for index, value in enumerate(tree):
            out.update(flatten(value, join_path(prefix, index)))
        return out
    return {prefix: tree}
