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
from network.events import n_features, time_steps, to_device
from network.losses import Loss, LossInput, combine
from network.network import Model, NetworkOutput
from network.optimizers import Scheduler
from network.rules import LearningRule, RuleContext
from pipeline.batches import BatchResult, EncodedSplit, Inputs, LabelCounts, loss_input
from pipeline.callbacks.base import Callback, callback_keys, ordered
from pipeline.callbacks.checkpoint import load_checkpoint
from pipeline.callbacks.tracker import MetricsTracker
from pipeline.compatibility import compatibility_problems
from pipeline.phases import phase
from pipeline.preflight import run_problems
from pipeline.state import DivergenceError, FitState
from settings import Factory, NonNegativeInt, PositiveFloat, PositiveInt
from settings.metrics import (EPOCH_TIME, LR, SPIKES_PER_SAMPLE, SPIKES_PER_STEP, TEST_ACC, TEST_LOSS, TRAIN_ACC,
                              TRAIN_LOSS, VAL_ACC, VAL_LOSS)
from settings.registries import PIPELINES
from tools.devices import choose_device, torch_dtype
from tools.seeding import rng_state, seed_everything, set_rng_state, torch_generator

@dataclass(frozen=True)
class Selection:
    """Which epoch is "the best": its checkpoint is best.pt and its test metrics are reported
    as at best (``test_acc_at_best_val``). The BRF papers select by the lowest validation loss.

    Args:
        monitor: a metric of every epoch (``val_acc``, ``val_loss``, ...).
        mode: ``max`` or ``min``.
    """

    monitor: str = VAL_ACC
    mode: Literal["max", "min"] = "max"


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
        loss: the loss, or a list of losses that add up (the first that is not a regulariser predicts).
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
        selection: which epoch is the best (``{monitor: val_loss, mode: min}``; default: highest val_acc).
        param_groups: per-parameter optimizer settings: ``[{params: readout, lr: 0.001}]``; ``params``
            is a parameter-name prefix (``layers.0``, ``readout.kernel.tau``), the other keys override
            the optimizer's for those parameters; the rest keep the optimizer's own settings.
        freeze: parameter-name prefixes that are not trained (``[layers.0]``); submodules under
            them also train in eval mode (BatchNorm keeps its statistics, Dropout is off).
    """

    def __init__(self, data: Dataset, model: Factory[Model], loss: Loss | list[Loss],
                 optimizer: Factory[torch.optim.Optimizer],
                 encoder: Encoder | None = None, learning_rule: LearningRule | list[LearningRule] = "BPTT",
                 scheduler: Factory[Scheduler] | None = None, callbacks: list[Callback] = (),
                 epochs: NonNegativeInt = 10, batch_size: PositiveInt = 32, eval_batch_size: PositiveInt | None = None,
                 shuffle: bool = True, train_metrics: Literal["eval", "running"] = "eval",
                 grad_clip: PositiveFloat | None = None, resample_encoding: bool = False, device: str = "cpu",
                 dtype: Literal["float32", "float64"] = "float32", selection: Selection | None = None,
                 param_groups: list[dict] = (), freeze: list[str] = ()):
        self.data, self.model_factory, self.loss, self.optimizer_factory = data, model, combine(loss), optimizer
        self.selection = selection or Selection()
        self.param_groups, self.freeze = [dict(g) for g in param_groups], list(freeze)
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
        problems = compatibility_problems(params)
        return problems or run_problems(params)

    # --- set-up ----------------------------------------------------------------------------
    def prepare(self, seed: int) -> tuple[DataSplits, dict[str, EncodedSplit], Model]:
        """Seed everything, load and encode the data, build the model (deterministic in ``seed``)."""
        seed_everything(seed)
        # Values below ~1e-38 become 0: decaying states (a silent resonator, a leak) otherwise
        # reach subnormal floats, which the CPU computes up to 100x slower.
        torch.set_flush_denormal(True)
        splits = self.data.load(seed)
        encoded = {name: self.encode(split, torch_generator(seed, f"encode-{name}"), splits.input_kind)
                   for name, split in splits.items()}
        sample = encoded["train"].inputs if len(splits.train) else encoded["test"].inputs
        input_size = n_features(sample)
        torch.manual_seed(seed)  # the model's initial weights depend on the seed alone
        model = self.model_factory(input_size=input_size).to(self.device, self.dtype)
        if problem := self.loss.outputs_problem(model.out_features, splits.n_classes):
            raise ValueError(f"{problem}; set the readout's (or last layer's) out_features to match")
        return splits, encoded, model

    def encode(self, split: Split, generator: torch.Generator | None = None,
               input_kind: str = "features") -> EncodedSplit:
        """Features go through the encoder (or are fed as one step without one); a sequence data
        set's ``[P, T, F]`` samples are fed as they are, time-major ``[T, P, F]`` (through an encoder
        that ``takes_sequences``, as LevelCrossingEncoder, when one is set). A sequence stored
        compactly (integer or bool, as SHD's uint8 spike counts) stays so on the device and is cast
        to the run's dtype one batch at a time."""
        compact = input_kind == "sequence" and not split.x.is_floating_point() and self.encoder is None
        if input_kind == "sequence":
            inputs: Inputs = split.x.transpose(0, 1)
            if self.encoder is not None:
                inputs = self.encoder.encode_sequence(inputs, generator)
        elif self.encoder is None:
            inputs = split.x.unsqueeze(0)
        else:
            inputs = self.encoder.encode(split.x, generator)
        inputs = to_device(inputs, self.device, None if compact else self.dtype)
        mask = None if split.mask is None else split.mask.to(self.device)
        return EncodedSplit(inputs, split.y.to(self.device), mask, self.dtype if compact else None)

    def build_optimizer(self, model: Model) -> torch.optim.Optimizer:
        """The optimizer over the trainable parameters: ``freeze`` prefixes are left out (and stop
        requiring gradients), each ``param_groups`` entry takes the parameters under its prefix
        with its own settings; every other parameter keeps the optimizer's."""
        named = list(model.named_parameters())
        for name, param in named:
            if any(_under(name, prefix) for prefix in self.freeze):
                param.requires_grad_(False)
        named = [(n, p) for n, p in named if p.requires_grad]
        groups, taken = [], set()
        for group in self.param_groups:
            settings = {k: v for k, v in group.items() if k != "params"}
            members = [p for n, p in named if _under(n, group["params"]) and n not in taken]
            taken |= {n for n, _ in named if _under(n, group["params"])}
            if members:
                groups.append({"params": members, **settings})
        rest = [p for n, p in named if n not in taken]
        if rest or not groups:
            groups.insert(0, {"params": rest})
        return self.optimizer_factory(params=groups)

    # --- training --------------------------------------------------------------------------
    def fit(self, seed: int, run_dir: str | Path | None = None, callbacks: Sequence[Callback] = (),
            resume: str | Path | dict | None = None) -> FitResult:
        """Train for ``epochs`` epochs (resuming after the epoch stored in ``resume``: a checkpoint
        file, or a checkpoint ``load_checkpoint`` returned) and return the history and summary.
        Callbacks: the configured ones plus ``callbacks``."""
        splits, encoded, model = self.prepare(seed)
        optimizer = self.build_optimizer(model)
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
        state.extra["encoded"] = encoded  # the encoded splits, for callbacks that run the model (SpikeRecorder)
        state.extra["n_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if state.run_dir is not None:
            self.save_run_files(state.run_dir, seed)
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
                    with phase("data"):
                        encoded["train"] = self.encode(splits.train, state.extra["encode"])
                running = self.train_epoch(state, encoded["train"], cbs)
                elapsed = time.perf_counter() - t0
                with phase("evaluation"):
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
        """``lr``: the rate the epoch trained with (at its first batch), before the scheduler stepped.
        Metrics that callbacks logged during the epoch (``state.log_metric``) join the epoch's."""
        metrics[LR] = lr
        metrics[EPOCH_TIME] = elapsed
        metrics.update(state.take_logged())
        state.epoch = epoch
        with phase("callbacks"):
            for cb in cbs:
                cb.on_epoch_end(state, epoch, metrics)

    def save_run_files(self, run_dir: Path, seed: int) -> None:
        """The data set's ``run_files`` (a permutation, ...) as ``<name>.npy`` in the run folder."""
        import numpy as np

        for name, array in self.data.run_files(seed).items():
            run_dir.mkdir(parents=True, exist_ok=True)
            np.save(run_dir / f"{name}.npy", array)

    def train_epoch(self, state: FitState, train: EncodedSplit, cbs: list[Callback]) -> dict[str, float] | None:
        model, optimizer, scheduler = state.model, state.optimizer, state.scheduler
        model.train()
        for name, module in model.named_modules():  # frozen submodules: BatchNorm statistics and Dropout stay off
            if name and any(_under(name, prefix) for prefix in self.freeze):
                module.eval()
        n = len(train)
        with phase("data"):
            order = torch.randperm(n, generator=state.extra["shuffle"]) if self.shuffle else torch.arange(n)
        needs_graph = any(rule.needs_graph for rule in self.rules)
        loss_sum, counts = 0.0, LabelCounts(state.extra["n_classes"])
        for batch, index in enumerate(order.split(self.batch_size)):
            with phase("data"):
                x, y, mask = train.batch(index.to(self.device))
            first: list[BatchResult] = []  # the batch before the update

            def closure() -> Tensor:
                """Forward, loss, rules -> .grad. Optimizers call it once (LBFGS: once per
                line-search evaluation); the batch's loss and accuracy are those of the first call,
                and the callbacks' on_before_optimizer_step sees that call's gradients."""
                optimizer.zero_grad(set_to_none=True)
                with phase("forward"):
                    with torch.set_grad_enabled(needs_graph):
                        output = model(x)
                    scores = output.scores if needs_graph else output.scores.detach().requires_grad_()
                    record = loss_input(output, y, mask, state.epoch, scores)
                    loss = self.loss(record)
                    loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise DivergenceError(f"train_loss became {loss_value} at epoch {state.epoch}, batch {batch}")
                with phase("backward"):
                    ctx = RuleContext(model, x, y, output, scores, loss)
                    for rule in self.rules:
                        rule.accumulate(ctx)
                    if self.grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
                if not first:
                    first.append(BatchResult(loss_value, output, record))
                    with phase("callbacks"):
                        for cb in cbs:
                            cb.on_before_optimizer_step(state, batch, first[0])
                return loss.detach()

            with phase("optimizer"):
                optimizer.step(closure)
                if scheduler is not None and scheduler.interval == "batch":
                    scheduler.step()
            result = first[0]
            loss_sum += result.loss * len(y)
            with torch.no_grad():
                counts.add(self.loss.predict(result.record), y, mask)
            with phase("callbacks"):
                for cb in cbs:
                    cb.on_batch_end(state, batch, result)
        for name, p in model.named_parameters():
            if not torch.isfinite(p).all():
                raise DivergenceError(f"parameter {name} became NaN/inf in epoch {state.epoch}")
        return {TRAIN_LOSS: loss_sum / max(n, 1), TRAIN_ACC: counts.accuracy()}

    # --- evaluation ------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model: Model, split: EncodedSplit, n_classes: int, epoch: int = 0) -> dict[str, float]:
        """``loss``, ``acc``, ``acc/label_<k>`` and, for spiking models, ``spikes_per_sample`` and
        ``spikes_per_step`` over a split. With per-step targets the accuracies count the steps
        the mask keeps (and the loss is the mean of its batches' losses, weighted by samples)."""
        model.eval()
        n = len(split)
        loss_sum, spikes, spiking, steps = 0.0, 0.0, False, None
        counts = LabelCounts(n_classes)
        for index in torch.arange(n, device=self.device).split(self.eval_batch_size):
            x, y, mask = split.batch(index)
            output = model(x)
            record = loss_input(output, y, mask, epoch)
            loss_sum += float(self.loss(record)) * len(y)
            spiking = spiking or any(trace.spiking for trace in output.traces)
            spikes += output.spikes_per_sample() * len(y)
            steps = time_steps(output.traces[0].out) if output.traces else 1
            counts.add(self.loss.predict(record), y, mask)
        out = {"loss": loss_sum / n, "acc": counts.accuracy()}
        if spiking:
            out[SPIKES_PER_SAMPLE] = spikes / n
            if steps is not None:  # continuous spike times have no steps
                out[SPIKES_PER_STEP] = spikes / n / steps
        out.update({f"acc/label_{k}": v for k, v in counts.per_label().items()})
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
            result = self.evaluate(model, split, n_classes, state.epoch)
            spikes = {k: result.pop(k) for k in (SPIKES_PER_SAMPLE, SPIKES_PER_STEP) if k in result}
            metrics.update({f"{name}_{k}": v for k, v in result.items()})
            if spikes and (name == "val" or (name == "train" and not has_val)):
                metrics.update(spikes)
        if TRAIN_LOSS in metrics and not math.isfinite(metrics[TRAIN_LOSS]):
            raise DivergenceError(f"train_loss became {metrics[TRAIN_LOSS]} at epoch {state.epoch}")
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
            "callbacks": {key: cb.state_dict() for key, cb in callback_keys(state.extra.get("callbacks", [])).items()},
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
        for key, cb in callback_keys(state.extra.get("callbacks", [])).items():
            saved = ckpt.get("callbacks", {}).get(key)
            if saved:
                cb.load_state_dict(saved)
        set_rng_state(ckpt["rng"])
        state.history = list(ckpt["history"])
        from pipeline.callbacks.tracker import summarize_state

        state.summary = summarize_state(state)
        state.epoch = state.resumed_from = int(ckpt["epoch"])
        return state.epoch


_ORDER = (TRAIN_LOSS, TRAIN_ACC, VAL_LOSS, VAL_ACC, TEST_LOSS, TEST_ACC, SPIKES_PER_SAMPLE, SPIKES_PER_STEP)


def _under(name: str, prefix: str) -> bool:
    """Whether parameter ``name`` lies under ``prefix`` (``layers.0`` holds ``layers.0.weight``)."""
    return name == prefix or name.startswith(prefix + ".")


def _metric_rank(key: str) -> tuple[int, str]:
    return (_ORDER.index(key), key) if key in _ORDER else (len(_ORDER), key)
