"""Checks of a whole run that no single component can make, done on the resolved spec before
anything runs: the readout gives the loss enough outputs for the data's classes, every monitored
metric is one the run produces, the optimizer's numbers are finite, and the run fits in memory.

The sizes come from the data set's ``shape()`` (known without loading it), the encoder's
``out_features`` and the layers' ``out_features`` (a layer or readout without that parameter,
like MaxMembrane, has as many outputs as inputs, as ``Network`` builds them).
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from data.base import DataShape
from encoders.base import n_steps
from network.losses import combine
from settings.metrics import produced_metrics
from settings.registries import DATASETS, ENCODERS, KERNELS, LOSSES
from settings.schema import build



@dataclass(frozen=True)
class RunSizes:
    """The sizes of one run: ``steps`` L per sample, ``inputs`` F' after encoding, the outputs of
    every layer and of the readout."""

    shape: DataShape
    steps: int
    inputs: int
    layers: list[int]
    outputs: int


def run_problems(params: dict) -> list[tuple[str, str]]:
    """(path, message) for every problem of a resolved TrainingPipeline spec found here."""
    problems = _finite_numbers(params)
    dataset = build(params["data"], DATASETS, "data")
    shape = dataset.shape()
    model = params["model"]
    if shape is None or model.get("type") != "Network":
        return problems
    sizes = run_sizes(params, shape)
    specs = params["loss"] if isinstance(params["loss"], list) else [params["loss"]]
    loss = combine([build(spec, LOSSES, "loss") for spec in specs])
    if problem := loss.outputs_problem(sizes.outputs, shape.classes):
        path = ("model.readout.out_features" if "out_features" in model["readout"]
                else f"model.layers[{len(model['layers']) - 1}].out_features")
        problems.append((path, f"is too small for the data: {problem}, got {sizes.outputs}; set the readout's (or "
                               "last layer's) out_features to match"))
    splits = ["train"] + [s for s in ("val", "test") if getattr(dataset, f"{s}_fraction", 0.0) > 0]
    spiking = any(getattr(KERNELS.get(layer["kernel"]["type"]), "spiking", False)
                  for layer in model["layers"] if isinstance(layer.get("kernel"), dict))
    metrics = produced_metrics(splits, shape.classes, params["train_metrics"] == "running", spiking)
    problems += _monitor_problems(params, metrics)
    problems += _memory_problems(params, sizes)
    return problems


def run_sizes(params: dict, shape: DataShape) -> RunSizes:
    spec = params.get("encoder")
    encoder = build(spec, ENCODERS, "encoder") if spec else None
    inputs = encoder.out_features(shape.features) if encoder is not None else shape.features
    steps = n_steps(spec["T"], spec["dt"]) if spec and "T" in spec and "dt" in spec else (shape.steps or 1)
    layers, size = [], inputs
    for layer in params["model"]["layers"]:
        size = layer.get("out_features", size)
        layers.append(size)
    return RunSizes(shape, steps, inputs, layers, params["model"]["readout"].get("out_features", size))


def _finite_numbers(params: dict) -> list[tuple[str, str]]:
    """An infinite or NaN learning rate (or any other optimizer or scheduler number) trains
    nothing: the weights become NaN in the first step."""
    problems = []
    for part in ("optimizer", "scheduler"):
        for key, value in (params.get(part) or {}).items():
            if isinstance(value, float) and not math.isfinite(value):
                problems.append((f"{part}.{key}", f"must be a finite number, got {value}; allowed: a number "
                                                  "such as 0.01"))
    return problems


def _monitor_problems(params: dict, metrics: set[str]) -> list[tuple[str, str]]:
    """Every ``monitor`` (callbacks, a ReduceLROnPlateau scheduler, the selection) must name a
    metric of the run; the selection's ``val_*`` stands for ``train_*`` without a validation split,
    as in summarize_history."""
    monitors = [(f"callbacks[{i}].monitor", cb["monitor"], cb["monitor"])
                for i, cb in enumerate(params.get("callbacks") or [])
                if isinstance(cb, dict) and isinstance(cb.get("monitor"), str)]
    scheduler = params.get("scheduler") or {}
    if scheduler.get("type") == "ReduceLROnPlateau":
        monitors.append(("scheduler.monitor", scheduler["monitor"], scheduler["monitor"]))
    selection = params.get("selection")
    if isinstance(selection, dict) and isinstance(selection.get("monitor"), str):
        name = selection["monitor"]
        has_val = any(m.startswith("val_") for m in metrics)
        monitors.append(("selection.monitor", name, name if has_val else name.replace("val_", "train_", 1)))
    shown = sorted(m for m in metrics if "/label_" not in m and not m.startswith("test_"))
    labels = sorted({m.split("/", 1)[0] for m in metrics if "/label_" in m and not m.startswith("test_")})
    allowed = ", ".join(shown + [f"{name}/label_<k>" for name in labels])
    problems = []
    for path, name, looked_up in monitors:
        if looked_up not in metrics:
            close = difflib.get_close_matches(name, shown, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append((path, f"is not a metric this run produces, got {name!r}{hint}; allowed: {allowed}"))
    return problems


def memory_estimate(params: dict, sizes: RunSizes) -> dict[str, int]:
    """A lower bound of the bytes one run holds, by part (the README describes the check):

    - ``parameters``: weights and their gradients, ``2 x sum(in x out)`` over the layers and a
      readout with ``out_features`` (optimizer state comes on top);
    - ``activations``: one ``[L, B, N]`` tensor per layer (its output, kept for the backward
      pass and in the traces), for a training or an evaluation batch, whichever is larger; the
      encoded input batch is left out (event-based encodings are not ``[L, B, F']``);
    - ``data``: the features ``[P, F]`` (float32) and at least one value per encoded input; a
      sequence data set's ``[P, T, F]`` at least one byte per value on the host and on the device
      (SHD keeps its spike counts as uint8).
    """
    width = 8 if params.get("dtype") == "float64" else 4
    fans, size = [], sizes.inputs
    for out in sizes.layers:
        fans.append(size * out)
        size = out
    readout = params["model"]["readout"]
    weights = sum(fans) + (size * sizes.outputs if "out_features" in readout else 0)
    batch = max(params["batch_size"], params.get("eval_batch_size") or 4 * params["batch_size"])
    return {"parameters": 2 * weights * width,
            "activations": sizes.steps * min(batch, sizes.shape.samples) * sum(sizes.layers) * width,
            "data": sizes.shape.samples * (2 * sizes.shape.steps * sizes.shape.features if sizes.shape.steps
                                           else sizes.shape.features * 4 + sizes.inputs * width)}


def available_memory(device: str) -> int:
    """Bytes a run may use: the free host memory, or a GPU's memory when it is larger."""
    import psutil

    free = psutil.virtual_memory().available
    if device != "cpu":
        import torch

        if torch.cuda.is_available():
            free = max(free, torch.cuda.get_device_properties(0).total_memory)
    return free


def _memory_problems(params: dict, sizes: RunSizes) -> list[tuple[str, str]]:
    parts = memory_estimate(params, sizes)
    need, free = sum(parts.values()), available_memory(str(params.get("device", "cpu")))
    if need <= free:
        return []
    index = max(range(len(sizes.layers)), key=lambda i: sizes.layers[i])
    path, value = f"model.layers[{index}].out_features", sizes.layers[index]
    if parts["data"] > parts["parameters"] + parts["activations"]:
        path, value = "data", sizes.shape.samples
    shown = ", ".join(f"{name} {_amount(amount)}" for name, amount in parts.items())
    return [(path, f"makes one run need at least {_amount(need)} of memory ({shown}), got {value}; "
                   f"{_amount(free)} is available here: make the layers, batch_size, T or the data smaller")]


def _amount(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.1f} {unit}" if unit != "B" else f"{size:.0f} B"
        size /= 1024
    return f"{size:.1f} TiB"
