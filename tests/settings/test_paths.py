from __future__ import annotations

import pytest

from settings.errors import ConfigError
from settings.paths import deep_merge, flatten, format_path, get_path, parse_path, set_path


def test_parse_and_format_round_trip():
    keys = parse_path("model.layers[0].kernel.tau_m")
    assert keys == ["model", "layers", 0, "kernel", "tau_m"]
    assert format_path(keys) == "model.layers[0].kernel.tau_m"
    assert parse_path("a[1][2].b") == ["a", 1, 2, "b"]


@pytest.mark.parametrize("bad", ["", "a..b", "a.", ".a", "a[x]", "a.[0]", " a"])
def test_malformed_paths_are_rejected(bad):
    with pytest.raises(ValueError):
        parse_path(bad)


def test_deep_merge_dicts_merge_lists_replace():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    merged = deep_merge(base, {"a": {"c": [3]}, "e": 2})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # inputs untouched


def test_deep_merge_index_paths_address_list_items():
    base = {"model": {"layers": [{"kernel": {"tau_m": 1, "tau_s": 2}}, {"kernel": {"tau_m": 3}}]}}
    merged = deep_merge(base, {"model.layers[0].kernel": {"tau_m": 10}, "model.layers[1].kernel.tau_m": 30})
    assert merged["model"]["layers"][0]["kernel"] == {"tau_m": 10, "tau_s": 2}
    assert merged["model"]["layers"][1]["kernel"] == {"tau_m": 30}


def test_deep_merge_index_out_of_range_is_a_config_error():
    with pytest.raises(ConfigError, match=r"layers\[5\]"):
        deep_merge({"layers": [{}]}, {"layers[5].x": 1})


def test_set_and_get_path():
    tree = {"a": [{"b": 1}]}
    set_path(tree, "a[0].b", 2)
    set_path(tree, "c.d", 3)
    assert get_path(tree, "a[0].b") == 2 and tree["c"] == {"d": 3}
    with pytest.raises(KeyError):
        set_path(tree, "a[3].b", 1)


def test_flatten_uses_index_paths():
    assert flatten({"a": {"b": [1, {"c": 2}]}, "d": {}}) == {"a.b[0]": 1, "a.b[1].c": 2, "d": {}}


def test_changing_a_component_type_replaces_its_parameters():
    base = {"optimizer": {"type": "MomentumOptimizer", "lr": 100, "momentum": 0.99}}
    assert deep_merge(base, {"optimizer": {"type": "Adam", "lr": 0.001}}) == {"optimizer": {"type": "Adam", "lr": 0.001}}
    assert deep_merge(base, {"optimizer": {"lr": 1}})["optimizer"]["momentum"] == 0.99
