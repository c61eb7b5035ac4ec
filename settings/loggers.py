"""``loggers:`` in experiment.yaml: extra writers of every run, beside the database.

Each key takes ``true`` (its defaults), ``false`` or a mapping of its settings::

    loggers:
      tensorboard: true                        # <run folder>/tb/ event files
      profile: {epochs: [1], steps: 20}        # torch.profiler on epoch 1's first 20 batches
      wandb: {project: my_project, mode: offline}

A logger whose package is not installed is refused here, before anything is written.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from settings.schema import PositiveInt


@dataclass(frozen=True)
class TensorBoardSettings:
    """TensorBoard event files in ``<run folder>/tb/``.

    Args:
        histogram_every: histograms of the parameters every this many epochs (epoch 0 and the
            last epoch always).
    """

    histogram_every: PositiveInt = 5


@dataclass(frozen=True)
class ProfileSettings:
    """torch.profiler on chosen epochs: ``profiler/epoch_<e>/`` in the run folder.

    Args:
        epochs: the training epochs to profile (1 is the first).
        steps: batches profiled per epoch (``null``: the whole epoch, evaluation included).
        row_limit: operators listed in ``profiler_output.txt``.
    """

    epochs: tuple[PositiveInt, ...] = (1,)
    steps: PositiveInt | None = 20
    row_limit: PositiveInt = 30


@dataclass(frozen=True)
class WandbSettings:
    """A Weights & Biases run per run: group = experiment, job type = trial, name = run folder.

    Args:
        project: the W&B project (default: the experiment's name).
        entity: the W&B user or team (default: W&B's own default).
        mode: ``offline`` writes into the run folder (``wandb sync`` uploads later); ``online``
            needs a login.
    """

    project: str | None = None
    entity: str | None = None
    mode: Literal["offline", "online"] = "offline"


@dataclass(frozen=True)
class LoggerSettings:
    """The extra writers of every run (all off by default; ``true`` switches one on with its
    defaults, see :func:`expand_switches`).

    Args:
        tensorboard: TensorBoard event files.
        profile: torch.profiler summaries of chosen epochs.
        wandb: a Weights & Biases run per run.
    """

    tensorboard: TensorBoardSettings | None = None
    profile: ProfileSettings | None = None
    wandb: WandbSettings | None = None

    @staticmethod
    def check_params(params: dict) -> list[tuple[str, str]]:
        """A logger that is on needs its package (imported here, only when asked for)."""
        return [(key, problem) for key in ("tensorboard", "wandb") if params.get(key) is not None
                for problem in _package_problem(key)]

    @classmethod
    def from_resolved(cls, resolved: dict[str, Any]) -> "LoggerSettings":
        """The settings objects of a validated ``loggers:`` mapping."""
        kinds = {"tensorboard": TensorBoardSettings, "profile": ProfileSettings, "wandb": WandbSettings}
        return cls(**{key: None if resolved.get(key) is None else
                      kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in resolved[key].items()})
                      for key, kind in kinds.items()})

    @property
    def any(self) -> bool:
        return any(value is not None for value in (self.tensorboard, self.profile, self.wandb))


def expand_switches(experiment: dict) -> dict:
    """experiment.yaml with ``loggers.<name>: true`` as ``{}`` (the defaults) and ``false`` as
    ``null`` (off), so that a mapping is then checked key by key."""
    loggers = experiment.get("loggers")
    if not isinstance(loggers, dict):
        return experiment
    switched = {k: ({} if v is True else None if v is False else v) for k, v in loggers.items()}
    return {**experiment, "loggers": switched}


def _package_problem(package: str) -> list[str]:
    """Why ``package`` cannot serve (it does not import), or nothing."""
    try:
        importlib.import_module(package)
    except ImportError as exc:
        return [f"needs the {package} package, which does not import here ({exc}); install it with: "
                f"pip install {package}"]
    return []
