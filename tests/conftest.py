"""Shared fixtures: the project root on sys.path, the shared data folder, small experiment folders."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, ROOT / "tests"):  # the project's packages and tests/testkit.py
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import pipeline  # noqa: E402,F401  (registers every component)

SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture
def shared_data() -> Path:
    folder = SHARED / "data"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}")
    return folder
