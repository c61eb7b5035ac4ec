from __future__ import annotations

import math

import pytest

from settings.errors import ConfigError
from settings.yaml_io import dump_yaml, parse_scalar, parse_yaml


def test_exponent_floats_without_dot_are_floats():
    data = parse_yaml("a: 1e-3\nb: -2E5\nc: 10\nd: .inf\ne: 1.5\nf: abc\n")
    assert data == {"a": 0.001, "b": -200000.0, "c": 10, "d": math.inf, "e": 1.5, "f": "abc"}
    assert isinstance(data["c"], int)


def test_invalid_yaml_names_file_line_and_column():
    with pytest.raises(ConfigError) as info:
        parse_yaml("a: 1\nb: c: d\n", "config.yaml")
    assert str(info.value).startswith("config.yaml:2:")
    assert "invalid YAML" in str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_flow_sequence_keys_become_tuples():
    assert parse_yaml("[a.b, c]: [1, 2]") == {("a.b", "c"): [1, 2]}


def test_parse_scalar():
    assert parse_scalar("0.1") == 0.1
    assert parse_scalar("[1, 2]") == [1, 2]
    assert parse_scalar("soft") == "soft"
    assert parse_scalar("null") is None and parse_scalar("true") is True


def test_dump_round_trip():
    data = {"a": [1, 2.5], "b": {"c": None, "d": "x"}}
    assert parse_yaml(dump_yaml(data)) == data
