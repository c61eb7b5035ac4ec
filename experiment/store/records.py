"""Result row -> frozen record conversions; the only place records are built."""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping, TypeVar

from experiment.store.base import RunRecord, RunStatus

R = TypeVar("R")


def record(cls: type[R], row: Mapping[str, Any]) -> R:
    """``cls`` filled from the same-named columns of ``row``."""
    return cls(**{f.name: row[f.name] for f in fields(cls)})  # type: ignore[arg-type]


def run_record(row: Mapping[str, Any]) -> RunRecord:
    return RunRecord(**{f.name: row[f.name] for f in fields(RunRecord) if f.name != "status"},
                     status=RunStatus(row["status"]))
