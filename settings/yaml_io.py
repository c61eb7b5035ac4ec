"""YAML reading (``safe_load`` only) with YAML 1.2 floats, and writing."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from settings.errors import ConfigError, ConfigIssue, format_value


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-3`` as a float (PyYAML's YAML 1.1 rules read it as a string)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    """Mappings whose keys are flow sequences (``[a, b]: ...``, tied sweep paths) get tuple keys.
    A key written twice in one mapping is an error (YAML forbids it; PyYAML would keep the last).
    Keys brought in by a ``<<:`` merge may be overridden, as YAML's merge rules say."""
    written: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = _key(loader, node, key_node)
        if key in written:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key: got {format_value(key)} a second time (first at line "
                            f"{written[key].line + 1}); a mapping holds each key once", key_node.start_mark)
        written[key] = key_node.start_mark
    loader.flatten_mapping(node)
    mapping: dict = {}
    for key_node, value_node in node.value:
        mapping[_key(loader, node, key_node)] = loader.construct_object(value_node, deep=deep)
    return mapping


def _key(loader: yaml.SafeLoader, node: yaml.MappingNode, key_node: yaml.Node) -> Any:
    key = loader.construct_object(key_node, deep=True)
    if isinstance(key, list):
        key = tuple(key)
    try:
        hash(key)
    except TypeError:
        raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                "found unhashable key", key_node.start_mark) from None
    return key


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)

_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
for _first in "-+0123456789.":
    _Loader.yaml_implicit_resolvers[_first] = [
        (tag, rx) for tag, rx in _Loader.yaml_implicit_resolvers.get(_first, []) if tag != "tag:yaml.org,2002:float"
    ]
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def parse_yaml(text: str, source: str = "<string>") -> Any:
    """Parse YAML text; a syntax error becomes a one-line ConfigError naming ``source:line:col``."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(ConfigIssue("", f"invalid YAML: {problem}", where)) from None


def load_yaml(path: str | Path) -> Any:
    """Read and parse a YAML file; a file that cannot be read or is not UTF-8 is a one-line ConfigError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(ConfigIssue("", f"cannot be read, got {exc.strerror or exc}; it must be a readable "
                                          "YAML file", str(path))) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = data[exc.start:exc.end]
        raise ConfigError(ConfigIssue("", f"is not valid UTF-8, got byte{'s' if len(bad) > 1 else ''} "
                                          f"{' '.join(f'0x{b:02x}' for b in bad)}; YAML files must be UTF-8 text "
                                          "(save the file as UTF-8)", f"{path}:{line}:{column}")) from None
    return parse_yaml(text, str(path))


def parse_scalar(text: str) -> Any:
    """A ``--set`` value: parsed as a YAML scalar/flow value (``0.1``, ``true``, ``[1, 2]``, ``abc``)."""
    value = parse_yaml(text, "--set") if text.strip() else ""
    return "" if value is None and text.strip() not in ("null", "~", "Null", "NULL") else value


class _Dumper(yaml.SafeDumper):
    pass


def _represent_tuple(dumper: yaml.SafeDumper, data: tuple) -> Any:
    return dumper.represent_list(list(data))


_Dumper.add_representer(tuple, _represent_tuple)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=100)
