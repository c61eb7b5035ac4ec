"""The training loop and its callbacks. Importing it registers every component of Spikelab."""
import data  # noqa: F401
import encoders  # noqa: F401
import network  # noqa: F401
from pipeline import callbacks  # noqa: F401
from pipeline.state import DivergenceError, FitState
from pipeline.training import FitResult, TrainingPipeline

__all__ = ["DivergenceError", "FitResult", "FitState", "TrainingPipeline"]
