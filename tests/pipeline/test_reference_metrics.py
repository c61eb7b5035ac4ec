"""The bundled tempotron and LIF configs give the per-epoch metrics recorded before the model
contract changed (tests/reference_metrics.json, made by tests/reference_runs.py)."""
from __future__ import annotations

import json
import math

import pytest
from reference_runs import CASES, FILE, run_case


@pytest.mark.parametrize("name", sorted(CASES))
def test_metrics_equal_the_recorded_reference(name: str) -> None:
    expected = json.loads(FILE.read_text())[name]
    history = run_case(name)
    assert [row["epoch"] for row in history] == [row["epoch"] for row in expected]
    for got, want in zip(history, expected):
        assert want.keys() <= got.keys()  # metrics may be added, none may change or go
        for key, value in want.items():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                assert math.isnan(got[key]), (name, got["epoch"], key)
            else:
                assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-6), (name, got["epoch"], key)
