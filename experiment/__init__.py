"""Experiment planning (run matrix), the experiment store (database), executors and the runner."""
