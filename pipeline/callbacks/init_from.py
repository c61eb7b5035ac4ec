"""InitFromCheckpoint: a stage starts from the submodules another run trained.

Not in the callback registry: the experiment layer adds it to a stage's run (settings.stages),
naming the upstream run's checkpoint, so no file path is ever typed into YAML.
"""
from __future__ import annotations

from pathlib import Path

import torch

from pipeline.callbacks.base import Callback
from pipeline.callbacks.checkpoint import load_checkpoint
from pipeline.state import FitState


class InitFromError(ValueError):
    """The upstream checkpoint does not fit the model (a submodule missing or shaped otherwise)."""


def copy_modules(model: torch.nn.Module, source: dict[str, torch.Tensor], modules: list[str],
                 origin: str = "the checkpoint") -> int:
    """Copy every state-dict entry under the prefixes ``modules`` from ``source`` into ``model``
    (parameters and buffers, in place, exactly); returns how many tensors were copied. Raises
    InitFromError when a prefix is missing on either side or the entries differ in name or shape."""
    target = model.state_dict()
    copied = 0
    for prefix in modules:
        theirs = {k: v for k, v in source.items() if k == prefix or k.startswith(prefix + ".")}
        ours = {k: v for k, v in target.items() if k == prefix or k.startswith(prefix + ".")}
        if not theirs:
            raise InitFromError(f"{origin} has no submodule {prefix!r}")
        if not ours:
            raise InitFromError(f"the model has no submodule {prefix!r}")
        if set(theirs) != set(ours):
            raise InitFromError(f"submodule {prefix!r} differs: only in {origin}: {sorted(set(theirs) - set(ours))}, "
                                f"only in the model: {sorted(set(ours) - set(theirs))}")
        for key, value in theirs.items():
            if ours[key].shape != value.shape:
                raise InitFromError(f"{key} has shape {tuple(value.shape)} in {origin} but {tuple(ours[key].shape)} "
                                    "in the model")
        with torch.no_grad():
            for key, value in theirs.items():
                ours[key].copy_(value)
        copied += len(theirs)
    return copied


class InitFromCheckpoint(Callback):
    """Before the untrained model is evaluated (epoch 0), copy the submodules ``modules`` from the
    model of the checkpoint at ``path``. A resumed fit skips it: its own checkpoint already holds
    those weights (trained on, if they were not frozen)."""

    order = -10

    def __init__(self, path: str | Path, modules: list[str]):
        self.path, self.modules = Path(path), list(modules)
        self.copied = 0

    def on_fit_start(self, state: FitState) -> None:
        if state.resumed_from is not None:
            return
        ckpt = load_checkpoint(self.path, next(state.model.parameters()).device)
        self.copied = copy_modules(state.model, ckpt["model"], self.modules, str(self.path))

    def __repr__(self) -> str:
        return f"InitFromCheckpoint({str(self.path)!r}, {self.modules})"
