"""One registry per kind of component. Components join them on import of their package."""
from __future__ import annotations

from settings.registry import Registry

KERNELS = Registry("kernels", runtime=("size",))
SURROGATES = Registry("surrogates")
INITIALIZERS = Registry("initializers")
LAYERS = Registry("layers", runtime=("in_features",))
READOUTS = Registry("readouts", runtime=("in_features",))
DELAYS = Registry("delays", runtime=("in_features", "out_features"))
MODELS = Registry("models", runtime=("input_size",), default="Network")
LEARNING_RULES = Registry("learning rules")
LOSSES = Registry("losses", singular="loss")
OPTIMIZERS = Registry("optimizers", runtime=("params",))
SCHEDULERS = Registry("schedulers", runtime=("optimizer",))
ENCODERS = Registry("encoders")
DATASETS = Registry("datasets")
CALLBACKS = Registry("callbacks")
PIPELINES = Registry("pipelines", default="TrainingPipeline")
