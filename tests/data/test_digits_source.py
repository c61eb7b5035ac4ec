"""Digits reads scikit-learn's data file itself: the same arrays as load_digits, without
importing scikit-learn (or scipy) in the run."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from data.digits import Digits, SequentialDigits

ROOT = Path(__file__).resolve().parents[2]


def test_the_arrays_are_load_digits():
    bunch = load_digits()
    for normalize in (True, False):
        x, y = Digits(normalize=normalize).arrays(0)
        expected = bunch.data.astype(np.float32) / (16.0 if normalize else 1.0)
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert np.array_equal(x, expected) and np.array_equal(y, bunch.target)
    assert SequentialDigits().arrays(0)[0].shape[0] == 1797


def test_loading_imports_neither_scikit_learn_nor_scipy():
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from data.digits import Digits; Digits().arrays(0); "
              "print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "[]", done.stderr
