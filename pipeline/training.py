"""TrainingPipeline: builds a run's components from its resolved config and owns the loop."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import torch
from torch import Tensor

from data.base import Dataset, DataSplits, Split
from encoders.base import Encoder
from network.events import SpikeTimes
from network.losses import Loss
from network.network import Model
from network.optimizers import Scheduler
from network.rules import LearningRule, RuleContext
from pipeline.callbacks.base import Callback, ordered
from pipeline.callbacks.checkpoint import load_checkpoint
from pipeline.callbacks.tracker import MetricsTracker
from pipeline.preflight import run_problems
from pipeline.state import DivergenceError, FitState
from settings import Factory, NonNegativeInt, PositiveFloat, PositiveInt
from settings.registries import PIPELINES
from tools.devices import choose_device, torch_dtype
from tools.seeding import rng_state, seed_everything, set_rng_state, torch_generator

Inputs = Tensor | SpikeTimes


@dataclass
class EncodedSplit:
    """A split's encoded inputs (``[T, P, F]`` or SpikeTimes) and targets ``[P]``."""

    inputs: Inputs
    targets: Tensor

    def __len__(self) -> int:
        return len(self.targets)

    def batch(self, index: Tensor) -> tuple[Inputs, Tensor]:
        x = self.inputs[index] if isinstance(self.inputs, SpikeTimes) else self.inputs[:, index]
        return x, self.targets[index]


@dataclass(frozen=True)
class FitResult:
    history: list[dict[str, float]]
    summary: dict[str, float]
    stop_reason: str | None


@PIPELINES.register
class TrainingPipeline:
    """Trains and evaluates one run.

    Args:
        data: the data set (split into train / val / test from the run's seed).
        model: the network.
        loss: the loss on the readout scores.
        optimizer: any torch.optim optimizer by name, or MomentumOptimizer.
        encoder: turns features into spikes (``null``: features are fed as they are, one step).
        learning_rule: one rule or a list whose gradients add up (default: BPTT).
        scheduler: a torch LR scheduler by name, with ``interval: epoch | batch``.
        callbacks: extra callbacks (EarlyStopping, ...).
        epochs: training epochs (0: only evaluate the untrained model).
        batch_size: training batch size.
        eval_batch_size: batch size for evaluation (default: 4 x batch_size).
        shuffle: reshuffle the training set every epoch (seeded from the run's seed).
        train_metrics: ``eval`` evaluates the training split after every epoch; ``running``
            averages the training batches instead (cheaper).
        grad_clip: clip the gradient norm to this value.
        resample_encoding: redraw a stochastic encoding of the training set every epoch.
        device: ``cpu``, ``cuda``, ``auto``...
        dtype: ``float32`` or ``float64``.
    """

    def __init__(self, data: Dataset, model: Factory[Model], loss: Loss, optimizer: Factory[torch.optim.Optimizer],
                 encoder: Encoder | None = None, learning_rule: LearningRule | list[LearningRule] = "BPTT",
                 scheduler: Factory[Scheduler] | None = None, callbacks: list[Callback] = (),
                 epochs: NonNegativeInt = 10, batch_size: PositiveInt = 32, eval_batch_size: PositiveInt | None = None,
                 shuffle: bool = True, train_metrics: Literal["eval", "running"] = "eval",
                 grad_clip: PositiveFloat | None = None, resample_encoding: bool = False, device: str = "cpu",
                 dtype: Literal["float32", "float64"] = "float32"):
        self.data, self.model_factory, self.loss, self.optimizer_factory = data, model, loss, optimizer
        self.encoder, self.scheduler_factory = encoder, scheduler
        rules = learning_rule if isinstance(learning_rule, (list, tuple)) else [learning_rule]
        self.rules = sorted(rules, key=lambda r: r.needs_graph)  # local rules read the graph before BPTT frees it
        self.callbacks = list(callbacks)
        self.epochs, self.batch_size = epochs, batch_size
        self.eval_batch_size = eval_batch_size or 4 * batch_size
        self.shuffle, self.train_metrics, self.grad_clip = shuffle, train_metrics, grad_clip
        self.resample_encoding = resample_encoding
        self.device, self.dtype = choose_device(device), torch_dtype(dtype)

    @staticmethod
    def check_params(params: dict) -> list[tuple[str, str]]:
        """One simulation has one time step: every component's ``dt`` must agree; then the checks
        of the whole run (pipeline.preflight: outputs per class, monitors, finite numbers, memory)."""
        steps: dict[str, float] = {}

        def collect(value, path: str) -> None:
            if isinstance(value, dict):
                for key, item in value.items():
                    where = f"{path}.{key}" if path else str(key)
                    if key == "dt" and isinstance(item, (int, float)) and not isinstance(item, bool):
                        steps[where] = float(item)
                    else:
                        collect(item, where)
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    collect(item, f"{path}[{i}]")

        collect(params, "")
        if len(set(steps.values())) > 1:
            shown = ", ".join(f"{where} {value:g}" for where, value in steps.items())
            return [("", f"components step time differently ({shown}); set env.dt once instead")]
        return run_problems(params)

    # --- set-up ----------------------------------------------------------------------------
    def prepare(self, seed: int) -> tuple[DataSplits, dict[str, EncodedSplit], Model]:
        """Seed everything, load and encode the data, build the model (deterministic in ``seed``)."""
        seed_everything(seed)
        splits = self.data.load(seed)
        encoded = {name: self.encode(split, torch_generator(seed, f"encode-{name}")) for name, split in splits.items()}
        sample = encoded["train"].inputs if len(splits.train) else encoded["test"].inputs
        input_size = sample.size if isinstance(sample, SpikeTimes) else sample.shape[-1]
        torch.manual_seed(seed)  # the model's initial weights depend on the seed alone
        model = self.model_factory(input_size=input_size).to(self.device, self.dtype)
        if problem := self.loss.outputs_problem(model.out_features, splits.n_classes):
            raise ValueError(f"{problem}; set the readout's (or last layer's) out_features to match")
        return splits, encoded, model

    def encode(self, split: Split, generator: torch.Generator | None = None) -> EncodedSplit:
        if self.encoder is None:
            inputs: Inputs = split.x.unsqueeze(0)
        else:
            inputs = self.encoder.encode(split.x, generator)
        if isinstance(inputs, SpikeTimes):
            inputs = inputs.to(self.device)
        else:
            inputs = inputs.to(self.device, self.dtype)
        return EncodedSplit(inputs, split.y.to(self.device))

    # --- training --------------------------------------------------------------------------
    def fit(self, seed: int, run_dir: str | Path | None = None, callbacks: Sequence[Callback] = (),
            resume: str | Path | dict | None = None) -> FitResult:
        """Train for ``epochs`` epochs (resuming after the epoch stored in ``resume``: a checkpoint
        file, or a checkpoint ``load_checkpoint`` returned) and return the history and summary.
        Callbacks: the configured ones plus ``callbacks``."""
        splits, encoded, model = self.prepare(seed)
        optimizer = self.optimizer_factory(params=model.parameters())
        scheduler = self.scheduler_factory(optimizer=optimizer) if self.scheduler_factory is not None else None
        all_callbacks = list(self.callbacks) + list(callbacks)
        if not any(isinstance(cb, MetricsTracker) for cb in all_callbacks):
            all_callbacks.append(MetricsTracker())
        cbs = ordered(all_callbacks)
        state = FitState(self, model, optimizer, scheduler, seed, Path(run_dir) if run_dir else None, self.epochs,
                         splits.sizes())
        state.extra["shuffle"] = torch_generator(seed, "shuffle")
        state.extra["encode"] = torch_generator(seed, "encode-resample")
        state.extra["callbacks"] = cbs
        state.extra["n_classes"] = splits.n_classes
        start = 1
        if resume is not None:
            ckpt = resume if isinstance(resume, dict) else load_checkpoint(resume, self.device)
            start = self.restore(state, ckpt) + 1
        try:
            for cb in cbs:
                cb.on_fit_start(state)
            if resume is None:
                self._end_epoch(state, cbs, 0, self.evaluate_all(model, encoded, splits.n_classes, state), 0.0,
                                self._lr(state))
            for epoch in range(start, self.epochs + 1):
                if state.should_stop:
                    break
                state.epoch = epoch
                for cb in cbs:
                    cb.on_epoch_start(state, epoch)
                t0, lr = time.perf_counter(), self._lr(state)
                if self.resample_encoding and self.encoder is not None and self.encoder.stochastic:
                    encoded["train"] = self.encode(splits.train, state.extra["encode"])
                running = self.train_epoch(state, encoded["train"], cbs)
                elapsed = time.perf_counter() - t0
                metrics = self.evaluate_all(model, encoded, splits.n_classes, state, running)
                if scheduler is not None and scheduler.interval == "epoch":
                    scheduler.step(metrics)
                self._end_epoch(state, cbs, epoch, metrics, elapsed, lr)
            for cb in cbs:
                cb.on_fit_end(state)
        except BaseException as exc:
            for cb in cbs:
                cb.on_exception(state, exc)
            raise
        return FitResult(state.history, state.summary, state.stop_reason)

    @staticmethod
    def _lr(state: FitState) -> float:
        return float(state.optimizer.param_groups[0]["lr"])

    def _end_epoch(self, state: FitState, cbs: list[Callback], epoch: int, metrics: dict[str, float],
                   elapsed: float, lr: float) -> None:
        """``lr``: the rate the epoch trained with (at its first batch), before the scheduler stepped."""
        metrics["lr"] = lr
        metrics["epoch_time_s"] = elapsed
        state.epoch = epoch
        for cb in cbs:
            cb.on_epoch_end(state, epoch, metrics)

    def train_epoch(self, state: FitState, train: EncodedSplit, cbs: list[Callback]) -> dict[str, float] | None:
        model, optimizer, scheduler = state.model, state.optimizer, state.scheduler
        model.train()
        n = len(train)
        order = torch.randperm(n, generator=state.extra["shuffle"]) if self.shuffle else torch.arange(n)
        needs_graph = any(rule.needs_graph for rule in self.rules)
        loss_sum, correct = 0.0, 0
        for batch, index in enumerate(order.split(self.batch_size)):
            x, y = train.batch(index.to(self.device))
            first: list[tuple[float, Tensor]] = []  # loss and scores before the update

            def closure() -> Tensor:
                """Forward, loss, rules -> .grad. Optimizers call it once (LBFGS: once per
                line-search evaluation); the batch's loss and accuracy are those of the first call."""
                optimizer.zero_grad(set_to_none=True)
                with torch.set_grad_enabled(needs_graph):
                    output = model(x)
                scores = output.scores if needs_graph else output.scores.detach().requires_grad_()
                loss = self.loss(scores, y)
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise DivergenceError(f"train_loss became {loss_value} at epoch {state.epoch}, batch {batch}")
                ctx = RuleContext(model, x, y, output, scores, loss)
                for rule in self.rules:
                    rule.accumulate(ctx)
                if self.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
                if not first:
                    first.append((loss_value, scores.detach()))
                return loss.detach()

            optimizer.step(closure)
            if scheduler is not None and scheduler.interval == "batch":
                scheduler.step()
            loss_value, scores = first[0]
            loss_sum += loss_value * len(y)
            correct += int((self.loss.predict(scores) == y).sum())
            for cb in cbs:
                cb.on_batch_end(state, batch, loss_value)
        for name, p in model.named_parameters():
            if not torch.isfinite(p).all():
                raise DivergenceError(f"parameter {name} became NaN/inf in epoch {state.epoch}")
        return {"train_loss": loss_sum / max(n, 1), "train_acc": correct / max(n, 1)}

    # --- evaluation ------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model: Model, split: EncodedSplit, n_classes: int) -> dict[str, float]:
        """``loss``, ``acc``, ``acc/label_<k>`` and (for spiking models) ``spikes_per_sample`` over a split."""
        model.eval()
        n = len(split)
        loss_sum, spikes, spiking = 0.0, 0.0, False
        hits = torch.zeros(n_classes, dtype=torch.long)
        counts = torch.zeros(n_classes, dtype=torch.long)
        for index in torch.arange(n, device=self.device).split(self.eval_batch_size):
            x, y = split.batch(index)
            output = model(x)
            loss_sum += float(self.loss(output.scores, y)) * len(y)
            spiking = spiking or any(trace.spiking for trace in output.traces)
            spikes += output.spikes_per_sample() * len(y)
            good = (self.loss.predict(output.scores) == y).cpu()
            y_cpu = y.cpu()
            hits += torch.bincount(y_cpu[good], minlength=n_classes)[:n_classes]
            counts += torch.bincount(y_cpu, minlength=n_classes)[:n_classes]
        out = {"loss": loss_sum / n, "acc": float(hits.sum()) / n}
        if spiking:
            out["spikes_per_sample"] = spikes / n
        for k in range(n_classes):
            out[f"acc/label_{k}"] = float(hits[k]) / float(counts[k]) if counts[k] else math.nan
        return out

    def evaluate_all(self, model: Model, encoded: dict[str, EncodedSplit], n_classes: int, state: FitState,
                     running: dict[str, float] | None = None) -> dict[str, float]:
        metrics: dict[str, float] = {}
        has_val = len(encoded["val"]) > 0
        for name, split in encoded.items():
            if not len(split):
                continue
            if name == "train" and running is not None and self.train_metrics == "running":
                metrics.update(running)
                continue
            result = self.evaluate(model, split, n_classes)
            spikes = result.pop("spikes_per_sample", None)
            metrics.update({f"{name}_{k}": v for k, v in result.items()})
            if spikes is not None and (name == "val" or (name == "train" and not has_val)):
                metrics["spikes_per_sample"] = spikes
        if "train_loss" in metrics and not math.isfinite(metrics["train_loss"]):
            raise DivergenceError(f"train_loss became {metrics['train_loss']} at epoch {state.epoch}")
        return dict(sorted(metrics.items(), key=lambda kv: _metric_rank(kv[0])))

    # --- checkpoints -----------------------------------------------------------------------
    def checkpoint(self, state: FitState) -> dict:
        """Everything a resumed fit needs, after ``state.epoch``."""
        return {
            "epoch": state.epoch,
            "seed": state.seed,
            "model": state.model.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict() if state.scheduler is not None else None,
            "rng": rng_state(),
            "generators": {k: g.get_state() for k, g in state.extra.items() if isinstance(g, torch.Generator)},
            "history": list(state.history),
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in state.extra.get("callbacks", [])},
        }

    def restore(self, state: FitState, ckpt: dict) -> int:
        """Load a checkpoint into ``state``; returns the epoch it was taken after."""
        state.model.load_state_dict(ckpt["model"])
        state.optimizer.load_state_dict(ckpt["optimizer"])
        if state.scheduler is not None and ckpt.get("scheduler") is not None:
            state.scheduler.load_state_dict(ckpt["scheduler"])
        for name, gen_state in ckpt.get("generators", {}).items():
            if isinstance(state.extra.get(name), torch.Generator):
                state.extra[name].set_state(gen_state)
        for cb in state.extra.get("callbacks", []):
            saved = ckpt.get("callbacks", {}).get(type(cb).__name__)
            if saved:
                cb.load_state_dict(saved)
        set_rng_state(ckpt["rng"])
        state.history = list(ckpt["history"])
        from pipeline.callbacks.tracker import summarize_history

        state.summary = summarize_history(state.history)
        state.epoch = state.resumed_from = int(ckpt["epoch"])
        return state.epoch

    def evaluate_checkpoint(self, checkpoint: str | Path | dict, split: str = "test") -> dict[str, float]:
        """Rebuild the run's data and model from the checkpoint's seed (a path, or a checkpoint
        ``load_checkpoint`` returned), load its weights, evaluate."""
        ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint, self.device)
        splits, encoded, model = self.prepare(int(ckpt["seed"]))
        model.load_state_dict(ckpt["model"])
        result = self.evaluate(model, encoded[split], splits.n_classes)
        return {f"{split}_{k}": v for k, v in result.items()} | {"epoch": float(ckpt["epoch"])}


_ORDER = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "spikes_per_sample")


def _metric_rank(key: str) -> tuple[int, str]:
    return (_ORDER.index(key), key) if key in _ORDER else (len(_ORDER), key)
