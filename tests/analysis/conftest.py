"""A small experiment database with hand-chosen values, built once through the store API.

- ``demo`` v1: trials ``lr=0.01`` and ``lr=0.1`` (group ``lr_sweep``, sweeping ``optimizer.lr``),
  3 COMPLETED repeats each with final_val_acc 0.80, 0.85, 0.90 and 0.60, 0.70, 0.74, plus a
  FAILED repeat 3 of ``lr=0.01`` whose summary (final_val_acc 0.10) must never count.
  Metrics per completed run, epochs 0..3: train_acc, val_acc, train_loss (12 rows); the failed
  run logged epochs 0 and 1 (6 rows). val_acc at epoch e is final_val_acc * e / 3.
- ``grid`` v1: a 3 x 2 sweep of ``optimizer.lr`` (1e-4, 1e-2, 1) and
  ``model.layers[0].kernel.tau_m`` (5, 10), 2 repeats each (values in ``GRID``); both repeats of
  lr=1, tau_m=10 FAILED. val_acc for epochs 0..2 per run.
- ``scratch`` v1: one trial, one COMPLETED run (final_val_acc 0.5); v2: one PENDING run.
- ``wild`` v1 (``wild_db``, its own database): wildly different repeats (values in ``WILD``): trials
  ``lr=0.001`` and ``lr=0.01`` with 2 repeats each, ``lr=0.1`` with 4, sweeping ``optimizer.lr``;
  val_acc, train_loss and spikes_per_sample for epochs 0..2 per run, each the run's value at
  every epoch; summaries final_val_acc, final_train_loss, final_spikes_per_sample.
- ``mixed`` and ``many`` (``mixed_db``): a grid and a search in one experiment, and nine plain
  trials (see the fixture).
- ``nbtour`` (``tour_db``) with run folders and a spike recording, and ``capacity``
  (``capacity_nb_db``): what the notebooks run against (see the fixtures).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from experiment.store import ErrorInfo, NewRun, RunStatus, SQLStore

DEMO = {"lr=0.01": (0.01, [0.80, 0.85, 0.90]), "lr=0.1": (0.1, [0.60, 0.70, 0.74])}
GRID = {(1e-4, 5.0): [0.50, 0.54], (1e-4, 10.0): [0.60, 0.62], (1e-2, 5.0): [0.70, 0.74],
        (1e-2, 10.0): [0.80, 0.86], (1.0, 5.0): [0.30, 0.20], (1.0, 10.0): None}


#: trial -> (lr, per repeat (val_acc, train_loss, spikes_per_sample)); a Student-t interval of
#: any of these leaves the metric's range
WILD = {"lr=0.001": (0.001, [(0.02, 0.01, 0.0), (0.98, 50.0, 400.0)]),
        "lr=0.01": (0.01, [(0.0, 0.0, 1.0), (1.0, 30.0, 0.0)]),
        "lr=0.1": (0.1, [(0.0, 0.0, 0.0), (0.01, 0.1, 1.0), (0.99, 20.0, 300.0), (1.0, 40.0, 500.0)])}


def config(lr: float, tau_m: float = 10.0) -> dict:
    layer = {"type": "Dense", "out_features": 8, "kernel": {"type": "LIFKernel", "tau_m": tau_m}}
    return {"model": {"layers": [layer]},
            "optimizer": {"type": "Adam", "lr": lr}, "epochs": 3, "env": {"T": 20, "dt": 1.0},
            "tags": ["snn", "demo"], "callbacks": []}


def digest(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()


def add_trial(store: SQLStore, experiment_id: int, name: str, cfg: dict, group: str | None = None,
              point: dict | None = None):
    return store.upsert_trial(experiment_id, name, cfg, digest(cfg), sweep_point=point, group_name=group)


def add_run(store: SQLStore, trial, repeat: int, status: RunStatus, summary: dict | None = None,
            epochs: list[dict] = (), output_dir: str | None = None) -> int:
    new = NewRun(trial.id, trial.config_hash, repeat, 1000 + repeat, output_dir or f"out/{trial.name}/repeat_{repeat}")
    [run] = store.ensure_runs(trial.experiment_id, [new])
    if status is RunStatus.PENDING:
        return run.id
    attempt = store.claim_run(run.id, "testhost", 4242)
    for epoch, metrics in enumerate(epochs):
        store.log_metrics(run.id, epoch, metrics)
    error = ErrorInfo("FloatingPointError", "loss is NaN") if status is RunStatus.FAILED else None
    store.finish_run(run.id, attempt.id, status, summary=summary, error=error)
    return run.id


def demo_curves(final: float, n_epochs: int) -> list[dict]:
    return [{"train_acc": final * e / 3 + 0.05, "val_acc": final * e / 3, "train_loss": 1.0 - final * e / 3}
            for e in range(n_epochs)]


def build(store: SQLStore) -> None:
    demo = store.open_experiment("demo", "two learning rates", 1, "configs/demo", {}, {})
    for name, (lr, finals) in DEMO.items():
        trial = add_trial(store, demo.id, name, config(lr), "lr_sweep", {"optimizer.lr": lr})
        for repeat, final in enumerate(finals):
            summary = {"final_val_acc": final, "best_val_acc": final + 0.02, "final_train_acc": final + 0.05,
                       "epochs": 3.0, "final_val_acc/label_0": final - 0.1}
            add_run(store, trial, repeat, RunStatus.COMPLETED, summary, demo_curves(final, 4))
        if name == "lr=0.01":
            add_run(store, trial, 3, RunStatus.FAILED, {"final_val_acc": 0.10}, demo_curves(0.10, 2))

    grid = store.open_experiment("grid", "lr x tau_m", 2, "configs/grid", {}, {})
    for (lr, tau_m), finals in GRID.items():
        point = {"optimizer.lr": lr, "model.layers[0].kernel.tau_m": tau_m}
        trial = add_trial(store, grid.id, f"lr={lr:g},tau_m={tau_m:g}", config(lr, tau_m), "grid", point)
        for repeat in range(2):
            if finals is None:
                add_run(store, trial, repeat, RunStatus.FAILED, None, [{"val_acc": 0.1}])
            else:
                curve = [{"val_acc": finals[repeat] * e / 2} for e in range(3)]
                add_run(store, trial, repeat, RunStatus.COMPLETED, {"final_val_acc": finals[repeat]}, curve)

    first = store.open_experiment("scratch", "first try", 3, "configs/scratch", {}, {})
    add_run(store, add_trial(store, first.id, "base", config(0.5)), 0, RunStatus.COMPLETED, {"final_val_acc": 0.5},
            [{"val_acc": 0.5}])
    second = store.open_experiment("scratch", "second try", 3, "configs/scratch", {}, {}, fresh=True)
    add_run(store, add_trial(store, second.id, "base", config(0.5)), 0, RunStatus.PENDING)


@pytest.fixture(scope="session")
def known_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of the database described above (read it only through ``analysis``)."""
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('analysis')) / 'known.db'}"
    with SQLStore.create(url) as store:
        build(store)
    return url


def build_wild(store: SQLStore) -> None:
    wild = store.open_experiment("wild", "wildly different repeats", 4, "configs/wild", {}, {})
    for name, (lr, repeats) in WILD.items():
        trial = add_trial(store, wild.id, name, config(lr), "lr_sweep", {"optimizer.lr": lr})
        for repeat, (acc, loss, spikes) in enumerate(repeats):
            curve = [{"val_acc": acc, "train_loss": loss, "spikes_per_sample": spikes}] * 3
            summary = {"final_val_acc": acc, "final_train_loss": loss, "final_spikes_per_sample": spikes}
            add_run(store, trial, repeat, RunStatus.COMPLETED, summary, curve)


@pytest.fixture(scope="session")
def wild_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of the ``wild`` database described above."""
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('analysis_wild')) / 'wild.db'}"
    with SQLStore.create(url) as store:
        build_wild(store)
    return url


@pytest.fixture(scope="session")
def mixed_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A grid over lr (logspace) and tau_m, and a search over lr (loguniform), in one experiment;
    9 plain trials of another for the small multiples."""
    url = f"sqlite:///{tmp_path_factory.mktemp('mixed') / 'mixed.db'}"
    files = {"trials": [{"name": "grid", "sweep": {"optimizer.lr": {"logspace": [-3, -2, 2]},
                                                     "model.layers[0].kernel.tau_m": [5.0, 10.0]}},
                        {"name": "tpe", "search": {"method": "tpe", "n_trials": 3,
                                                   "params": {"optimizer.lr": {"loguniform": [1e-3, 1e-2]}}}}]}
    with SQLStore.create(url) as store:
        mixed = store.open_experiment("mixed", "grid and search", 5, "configs/mixed", files, {})
        for lr in (0.001, 0.01):
            for tau in (5.0, 10.0):
                trial = add_trial(store, mixed.id, f"grid-lr={lr:g}-tau={tau:g}", config(lr, tau), "grid",
                                  {"optimizer.lr": lr, "model.layers[0].kernel.tau_m": tau})
                for repeat in range(3):
                    add_run(store, trial, repeat, RunStatus.COMPLETED, {"best_val_acc": 0.5 + lr * 10 + repeat / 100},
                            [{"val_acc": 0.5}])
        for i, lr in enumerate((0.002, 0.004, 0.008)):
            trial = add_trial(store, mixed.id, f"tpe-{i}", config(lr), "tpe", {"optimizer.lr": lr})
            add_run(store, trial, 0, RunStatus.COMPLETED, {"best_val_acc": 0.9 - i / 10}, [{"val_acc": 0.9}])
        many = store.open_experiment("many", "nine trials", 6, "configs/many", {}, {})
        for i in range(9):
            trial = add_trial(store, many.id, f"t{i}", config(0.01 * (i + 1)))
            add_run(store, trial, 0, RunStatus.COMPLETED, {"best_val_acc": i / 10},
                    [{"val_acc": i / 20, "train_loss": 1 - i / 10}, {"val_acc": i / 10, "train_loss": 1 - i / 9}])
    return url


def synthetic_recording(epoch: int):
    """Two samples, one spiking layer of 3 neurons over 5 steps, 2 spikes."""
    import numpy as np

    from tools.recordings import LayerRecording, Recording

    spikes = np.zeros((5, 2, 3), dtype=np.float32)
    spikes[1, 0, 2] = spikes[3, 1, 0] = 1.0
    layer = LayerRecording(spikes, np.linspace(0, 1, 30, dtype=np.float32).reshape(5, 2, 3), True)
    return Recording(epoch, "test", np.array([4, 9]), np.array([0, 1]), np.array([0, 0]),
                     np.zeros((2, 2), dtype=np.float32), {"layers.0": layer}, 1.0)


@pytest.fixture(scope="session")
def tour_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``nbtour``: trials lr=0.01 and lr=0.1 (best_val_acc 0.7, 0.75, 0.8 and 0.85, 0.9, 0.95),
    each run with a folder; the best run's holds a spike recording of epoch 2."""
    from tools.recordings import recording_path, save_recording

    tmp = tmp_path_factory.mktemp("nbtour")
    url = f"sqlite:///{tmp / 'tour.db'}"
    with SQLStore.create(url) as store:
        exp = store.open_experiment("nbtour", "notebook tour", 1, "configs/nbtour", {}, {})
        for lr, finals in ((0.01, [0.7, 0.75, 0.8]), (0.1, [0.85, 0.9, 0.95])):
            trial = add_trial(store, exp.id, f"lr={lr:g}", config(lr), "lr", {"optimizer.lr": lr})
            for repeat, final in enumerate(finals):
                folder = tmp / trial.name / f"repeat_{repeat}"
                folder.mkdir(parents=True)
                add_run(store, trial, repeat, RunStatus.COMPLETED, {"best_val_acc": final},
                        [{"val_acc": final * e / 2, "train_loss": 1 - final * e / 2} for e in range(3)], str(folder))
                if final == 0.95:
                    save_recording(synthetic_recording(2), recording_path(folder, 2))
    return url


@pytest.fixture(scope="session")
def capacity_nb_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``capacity``: N = 100 at loads 1, 2, 3, 4 with 4, 3, 1, 0 perfect runs of 4."""
    url = f"sqlite:///{tmp_path_factory.mktemp('nbcapacity') / 'capacity.db'}"
    with SQLStore.create(url) as store:
        exp = store.open_experiment("capacity", "capacity", 1, "configs/capacity", {}, {})
        for alpha, perfect in zip((1, 2, 3, 4), (4, 3, 1, 0)):
            cfg = {"data": {"type": "RandomDataset", "size": alpha * 100, "input_size": 100}, "epochs": 10}
            trial = add_trial(store, exp.id, f"P{alpha * 100}", cfg, "loads", {"data.size": alpha * 100})
            for repeat in range(4):
                acc = 1.0 if repeat < perfect else 0.95
                add_run(store, trial, repeat, RunStatus.COMPLETED, {"best_train_acc": acc, "final_train_acc": acc})
    return url
