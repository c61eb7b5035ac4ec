"""Which components can work together, checked on the resolved spec before anything runs: a
combination that could only fail at the first batch (a tempotron rule under a leaky-integrator
readout, a per-step loss on per-sample labels, a sequence data set behind an encoder of
features) is a config error with its YAML path.

Everything here reads what the components declare (``LearningRule.readouts``,
``needs_linear_kernel``, ``last_layer_only``, ``class_targets``; ``Loss.target_kind()``,
``needs_step_scores``, ``regularizer``; ``Readout.has_trace``; ``Encoder.takes_sequences``;
``Dataset.input_kind`` and ``target_kind``), so a new component joins the checks by declaring
the same attributes.
"""
from __future__ import annotations

import torch

from network.losses import Loss
from settings.registries import DATASETS, ENCODERS, KERNELS, LAYERS, LEARNING_RULES, LOSSES, MODELS, READOUTS
from settings.schema import build

Problem = tuple[str, str]


def compatibility_problems(params: dict) -> list[Problem]:
    """(path, message) for every combination of the run's components that cannot work."""
    dataset = build(params["data"], DATASETS, "data")
    losses, loss_paths = _losses(params)
    problems: list[Problem] = []
    predicting = [(loss, path) for loss, path in zip(losses, loss_paths) if not loss.regularizer]
    if not predicting:
        problems.append(("loss", "lists only regularisers (" + ", ".join(type(l).__name__ for l in losses)
                                 + "); put the loss that predicts the classes first, e.g. CrossEntropyLoss"))
    main, main_path = predicting[0] if predicting else (None, "loss")
    data_kind = getattr(dataset, "target_kind", "class")
    if main is not None and main.target_kind() != data_kind:
        problems.append((main_path, f"{_describe(main)} trains on {_kind(main.target_kind())}, but "
                                    f"{type(dataset).__name__} gives {_kind(data_kind)}; "
                                    + _loss_hint(data_kind)))
    encoder = params.get("encoder")
    if getattr(dataset, "input_kind", "features") == "sequence" and encoder \
            and not getattr(ENCODERS.get(encoder["type"]), "takes_sequences", False):
        sequential = [name for name in ENCODERS.names() if getattr(ENCODERS.get(name), "takes_sequences", False)]
        problems.append(("encoder", f"must be null: {type(dataset).__name__} already gives a sequence of inputs per "
                                    f"sample ({encoder['type']} turns features into spikes; encoders of sequences: "
                                    f"{', '.join(sequential)})"))
    model = params["model"]
    if getattr(dataset, "layout", "flat") == "image" and not getattr(MODELS.get(model["type"]), "takes_images", False):
        takes = ", ".join(name for name in MODELS.names() if getattr(MODELS.get(name), "takes_images", False))
        problems.append(("data.layout", f"must be flat for a {model['type']} model (its layers take flat features), "
                                        f"got 'image'; or use a model that takes images: {takes}"))
    if model.get("type") != "Network":
        return problems
    readout = model["readout"]
    readout_type = READOUTS.get(readout["type"])
    for loss, path in zip(losses, loss_paths):
        if loss.needs_step_scores and not readout_type.has_trace:
            with_trace = [name for name in READOUTS.names() if READOUTS.get(name).has_trace]
            problems.append((path, f"{_describe(loss)} reads the readout's scores at every step, but "
                                   f"{readout['type']} keeps none; use a readout with a trace: {', '.join(with_trace)}"))
    problems += _rule_problems(params, model, data_kind)
    return problems


def _losses(params: dict) -> tuple[list[Loss], list[str]]:
    spec = params["loss"]
    specs = spec if isinstance(spec, list) else [spec]
    paths = [f"loss[{i}]" for i in range(len(specs))] if isinstance(spec, list) else ["loss"]
    return [build(s, LOSSES, p) for s, p in zip(specs, paths)], paths


def _rule_problems(params: dict, model: dict, data_kind: str) -> list[Problem]:
    spec = params.get("learning_rule") or "BPTT"
    specs = spec if isinstance(spec, list) else [spec]
    layers = model["layers"]
    problems: list[Problem] = []
    for i, rule_spec in enumerate(specs):
        path = f"learning_rule[{i}]" if isinstance(spec, list) else "learning_rule"
        rule = build(rule_spec, LEARNING_RULES, path)
        name = type(rule).__name__
        index = getattr(rule, "layer", -1)
        if not -len(layers) <= index < len(layers):
            problems.append((f"{path}.layer", f"must name one of the {len(layers)} layer(s) "
                                              f"({-len(layers)}..{len(layers) - 1}), got {index}"))
            continue
        position = index % len(layers)
        if rule.last_layer_only and position != len(layers) - 1:
            problems.append((f"{path}.layer", f"{name} trains the last layer only, got layer {index}"))
        if rule.readouts and model["readout"]["type"] not in rule.readouts:
            problems.append(("model.readout.type", f"{name} needs a {' or '.join(rule.readouts)} readout, got "
                                                   f"{model['readout']['type']!r}; change the readout or use "
                                                   "learning_rule: BPTT"))
        if rule.class_targets and data_kind != "class":
            problems.append((path, f"{name} trains on one label per sample, but the data gives a label per step"))
        if rule.needs_linear_kernel:
            problems += _linear_kernel_problems(name, layers[position], f"model.layers[{position}]")
        if name == "IntegrateLR" and model["readout"]["type"] == "SoftMaxMembrane" \
                and model["readout"].get("beta") != rule_spec.get("beta"):
            problems.append((f"{path}.beta", f"must equal the SoftMaxMembrane readout's beta "
                                             f"({model['readout'].get('beta')}), got {rule_spec.get('beta')}"))
    return problems


def _linear_kernel_problems(rule: str, layer: dict, path: str) -> list[Problem]:
    """A PSP rule needs a Dense layer whose kernel has an impulse response (reset-free)."""
    if not hasattr(LAYERS.get(layer["type"]), "psp"):
        return [(f"{path}.type", f"{rule} needs a Dense layer (it reads the layer's PSPs), got {layer['type']!r}")]
    kernel_spec = layer.get("kernel")
    if not isinstance(kernel_spec, dict):
        return []
    kernel = build(kernel_spec, KERNELS, f"{path}.kernel", size=1)
    try:
        kernel.response(torch.arange(2, dtype=torch.float64))
    except TypeError:
        linear = [n for n in KERNELS.names() if _has_response(n)]
        return [(f"{path}.kernel.type", f"{rule} needs a reset-free kernel with an impulse response "
                                        f"({', '.join(linear)}), got {kernel_spec['type']!r}")]
    return []


def _has_response(name: str) -> bool:
    """Whether a kernel type defines an impulse response at all (LeakyKernel: only without a reset)."""
    return KERNELS.get(name).response is not KERNELS.base.response


def _describe(loss: Loss) -> str:
    mode = getattr(loss, "mode", None)
    return f"{type(loss).__name__}" + (f" (mode {mode})" if mode else "")


def _kind(kind: str) -> str:
    return "one label per sample" if kind == "class" else "a label per step"


def _loss_hint(data_kind: str) -> str:
    if data_kind == "per_step":
        return "use SequenceNLL with mode: per_step"
    return "use a per-sample loss (CrossEntropyLoss, or SequenceNLL with mode: last or mean)"
