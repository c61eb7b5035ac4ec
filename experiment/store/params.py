"""Flattened, typed params: a nested config as ``(key, kind, num_value, text_value)`` rows.

Keys are dot paths with list indices, ``model.layers[0].kernel.tau_m``. Kinds:

- ``bool``: ``num_value`` 0 or 1
- ``number``: int or float in ``num_value`` (NaN stored as NULL)
- ``text``: ``text_value``
- ``null``: both NULL
- ``json``: anything else (empty list or dict, unknown objects) as JSON in ``text_value``
"""
from __future__ import annotations

import json
import math
import numbers
from typing import Any, Iterator, NamedTuple


class ParamRow(NamedTuple):
    key: str
    kind: str
    num_value: float | None
    text_value: str | None


def flatten(config: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dot path, leaf)`` pairs of nested dicts and lists; empty containers are leaves."""
    if isinstance(config, dict) and config:
        for key, value in config.items():
            yield from flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(config, (list, tuple)) and config:
        for index, value in enumerate(config):
            yield from flatten(value, f"{prefix}[{index}]")
    else:
        yield prefix, config


def param_row(key: str, value: Any) -> ParamRow:
    """The typed row of one leaf value."""
    if isinstance(value, bool):
        return ParamRow(key, "bool", float(value), None)
    if isinstance(value, numbers.Real):
        number = float(value)
        return ParamRow(key, "number", None if math.isnan(number) else number, None)
    if isinstance(value, str):
        return ParamRow(key, "text", None, value)
    if value is None:
        return ParamRow(key, "null", None, None)
    return ParamRow(key, "json", None, json.dumps(value, sort_keys=True, default=str))


def param_rows(config: dict[str, Any]) -> list[ParamRow]:
    """Every leaf of ``config`` as a typed row."""
    return [param_row(key, value) for key, value in flatten(config)]


def param_value(kind: str, num_value: float | None, text_value: str | None) -> Any:
    """The Python value of a stored param (numbers come back as float)."""
    if kind == "bool":
        return bool(num_value)
    if kind == "number":
        return math.nan if num_value is None else float(num_value)
    if kind == "text":
        return text_value
    if kind == "json":
        return None if text_value is None else json.loads(text_value)
    return None
