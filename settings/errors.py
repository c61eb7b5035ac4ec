"""Configuration errors: every problem carries the YAML path it was found at."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in the configuration, e.g. ``model.layers[0].kernel.tau_m must be > 0, got -5``."""

    path: str
    message: str
    where: str = ""  # the file or trial the path belongs to ("config.yaml", "trial 'fast'")

    def __str__(self) -> str:
        prefix = f"{self.where}: " if self.where else ""
        location = f"{self.path} " if self.path else ""
        return f"{prefix}{location}{self.message}"


class ConfigError(Exception):
    """All problems found in one validation pass, one line each."""

    def __init__(self, issues: list[ConfigIssue] | ConfigIssue | str):
        if isinstance(issues, str):
            issues = [ConfigIssue("", issues)]
        elif isinstance(issues, ConfigIssue):
            issues = [issues]
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))

    def located(self, where: str) -> "ConfigError":
        """The same issues, attributed to ``where`` when they have no location yet."""
        return ConfigError([i if i.where else ConfigIssue(i.path, i.message, where) for i in self.issues])


def format_value(value: object) -> str:
    """A short, YAML-like rendering of a bad value for error messages."""
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
