"""The names of the metrics a run records, and of the summary values made from them: the one
place that spells them. Every epoch records ``<split>_loss`` and ``<split>_acc`` for each split
with samples (``train``, ``val``, ``test``), per-label accuracies ``<split>_acc/label_<k>``,
``lr`` and ``epoch_time_s``, and for a spiking model ``spikes_per_sample`` and
``spikes_per_step``; callbacks may log more (``state.log_metric``). A run's summary holds
``final_<metric>`` for each, ``best_<monitor>``, ``best_epoch``, ``test_*_at_best_val`` (also
per class, ``test_acc/label_<k>_at_best_val``), the
spike counts at the selected epoch (``spikes_per_sample_at_best``, ``spikes_per_step_at_best``),
the convergence epochs of the test accuracy (``convergence_95``, ``convergence_98``,
``convergence_100``) and ``n_params``.
"""
from __future__ import annotations

import re

SPLITS = ("train", "val", "test")
TRAIN_LOSS, TRAIN_ACC = "train_loss", "train_acc"
VAL_LOSS, VAL_ACC = "val_loss", "val_acc"
TEST_LOSS, TEST_ACC = "test_loss", "test_acc"
LR, EPOCH_TIME = "lr", "epoch_time_s"
SPIKES_PER_SAMPLE, SPIKES_PER_STEP = "spikes_per_sample", "spikes_per_step"
#: what the SparsityMetrics callback records per source of spikes (``<measure>/<source>``: a
#: spiking layer ``layer_<i>`` of the model, or ``input``, the pipeline encoder's spikes), and
#: ``spike_density`` over all of them
SPARSITY_MEASURES = ("spike_density", "binary_sparsity", "hoyer_sparsity", "temporal_sparsity")
SPIKE_DENSITY, INPUT_SOURCE = "spike_density", "input"
N_PARAMS = "n_params"
#: the summary values of the spike counts at the selected epoch (``best_epoch``)
SPIKES_AT_BEST = {SPIKES_PER_SAMPLE: "spikes_per_sample_at_best", SPIKES_PER_STEP: "spikes_per_step_at_best"}
#: convergence summary name -> fraction of the final test accuracy: the first epoch whose test
#: accuracy reaches that fraction (the BRF paper's convergence speed)
CONVERGENCE = {"convergence_95": 0.95, "convergence_98": 0.98, "convergence_100": 1.0}

#: what log.txt shows of each epoch
EPOCH_HEADLINE = (TRAIN_LOSS, TRAIN_ACC, VAL_LOSS, VAL_ACC, TEST_ACC, SPIKES_PER_SAMPLE, EPOCH_TIME)
#: the summary values the tables of ``run`` and ``show`` lead with, when a run has them
SUMMARY_HEADLINE = ("final_train_acc", "final_val_acc", "final_test_acc", "best_val_acc", "best_train_acc",
                    "test_acc_at_best_val", "final_spikes_per_sample")

#: the summary values ``show`` prints in a second table when a run has them: size, spikes at the
#: selected epoch, convergence epochs
SUMMARY_COSTS = (N_PARAMS, SPIKES_AT_BEST[SPIKES_PER_SAMPLE], *CONVERGENCE)


def split_metric(split: str, what: str) -> str:
    """``<split>_<what>``: ``split_metric("val", "acc") == "val_acc"``."""
    return f"{split}_{what}"


def sparsity_metric(measure: str, source: str) -> str:
    """``<measure>/<source>``: ``sparsity_metric("hoyer_sparsity", "layer_0") == "hoyer_sparsity/layer_0"``."""
    return f"{measure}/{source}"


def label_metric(split: str, label: int) -> str:
    """The accuracy on the samples of class ``label``: ``<split>_acc/label_<label>``."""
    return f"{split}_acc/label_{label}"


def produced_metrics(splits: list[str], classes: int, running_train: bool, spiking: bool) -> set[str]:
    """The metric names every epoch of a run records (TrainingPipeline.evaluate_all, evaluate
    and _end_epoch): ``<split>_loss``, ``<split>_acc`` and ``<split>_acc/label_<k>`` for each
    split with samples (only loss and accuracy for ``train_metrics: running``),
    ``spikes_per_sample`` and ``spikes_per_step`` for a spiking model, ``lr`` and ``epoch_time_s``."""
    names = {LR, EPOCH_TIME} | ({SPIKES_PER_SAMPLE, SPIKES_PER_STEP} if spiking else set())
    for split in splits:
        names |= {split_metric(split, "loss"), split_metric(split, "acc")}
        if not (split == "train" and running_train):
            names |= {label_metric(split, k) for k in range(classes)}
    return names


def selection_metric_problem(name: str) -> str | None:
    """Why ``name`` cannot select a model (None when it can): models are selected on training
    or validation metrics only (early stopping, the best checkpoint, plateau schedules, search
    objectives); the test split never selects, nor do the convergence epochs made from it."""
    if name in CONVERGENCE:
        return (f"{name!r} is measured on the test split, which never selects models; use a training or "
                "validation metric")
    pattern = r"(^|_)test(_|$)"
    if re.search(pattern, name):
        instead = "best_val_acc" if name == "test_acc_at_best_val" else re.sub(pattern, r"\1val\2", name)
        return f"{name!r} is measured on the test split, which never selects models; use {instead!r}"
    return None


def headline_summary(columns: list[str]) -> list[str]:
    """The :data:`SUMMARY_HEADLINE` values among ``columns``, in that order."""
    return [m for m in SUMMARY_HEADLINE if m in columns]


def cost_summary(columns: list[str]) -> list[str]:
    """The :data:`SUMMARY_COSTS` values among ``columns``, in that order."""
    return [m for m in SUMMARY_COSTS if m in columns]
