"""Data sets (registered on import)."""
from data import digits, ecg, mnist, random_patterns, shd, yinyang  # noqa: F401
from data.base import DataSplits, Dataset, Split, split_indices

__all__ = ["DataSplits", "Dataset", "Split", "split_indices"]
