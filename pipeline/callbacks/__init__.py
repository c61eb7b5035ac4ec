"""Training callbacks (registered on import)."""
from pipeline.callbacks import checkpoint, csv_logger, early_stopping, progress, run_plots, spike_recorder, tracker, weight_bumping  # noqa: F401
from pipeline.callbacks import sparsity  # noqa: F401
from pipeline.callbacks.base import Callback
from pipeline.callbacks.checkpoint import ModelCheckpoint
from pipeline.callbacks.csv_logger import CSVLogger
from pipeline.callbacks.early_stopping import EarlyStopping
from pipeline.callbacks.progress import ProgressBar
from pipeline.callbacks.run_plots import RunPlots
from pipeline.callbacks.spike_recorder import SpikeRecorder
from pipeline.callbacks.tracker import MetricsTracker

__all__ = ["Callback", "CSVLogger", "EarlyStopping", "MetricsTracker", "ModelCheckpoint", "ProgressBar", "RunPlots",
           "SpikeRecorder"]
