"""One seed for python, numpy and torch, and independent child seeds for each purpose."""
from __future__ import annotations

import random
import zlib

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and CUDA) from one seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derive_seed(seed: int, purpose: str) -> int:
    """A child seed for one purpose (``"data"``, ``"split"``, ``"shuffle"``...), stable across runs."""
    sequence = np.random.SeedSequence([seed % 2**63, zlib.crc32(purpose.encode())])
    return int(sequence.generate_state(1, np.uint64)[0] % 2**63)


def torch_generator(seed: int, purpose: str, device: str | torch.device = "cpu") -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(seed, purpose))
    return generator


def rng_state() -> dict:
    """The global RNG states (for checkpoints), as tensors and plain Python data only, so that a
    checkpoint loads with ``torch.load(weights_only=True)``: python's state is a tuple of ints,
    numpy's MT19937 key a tensor, torch's a ByteTensor."""
    name, key, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {"python": random.getstate(),
             "numpy": {"name": str(name), "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` returned (also the numpy tuple of older checkpoints)."""
    random.setstate(state["python"])
    saved = state["numpy"]
    if isinstance(saved, dict):
        saved = (saved["name"], saved["key"].numpy().astype(np.uint32), saved["pos"], saved["has_gauss"],
                 saved["cached_gaussian"])
    np.random.set_state(saved)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
