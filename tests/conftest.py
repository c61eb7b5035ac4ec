"""The project root and tests/ on sys.path, every component registered, one torch thread per test."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, ROOT / "tests"):  # the project's packages and tests/testkit.py
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import pipeline  # noqa: E402,F401  (registers every component)


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(1)
    yield
