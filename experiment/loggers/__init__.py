"""Extra writers of a run, switched on by ``loggers:`` in experiment.yaml: TensorBoard event
files, a torch.profiler summary of chosen epochs, a Weights & Biases run. The database stays
the record; each writer is a callback of its own, run through :class:`FailSoft`."""
from experiment.loggers.fail_soft import FailSoft, run_loggers

__all__ = ["FailSoft", "run_loggers"]
