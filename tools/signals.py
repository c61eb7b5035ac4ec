"""SIGTERM handled like SIGINT: the current run is marked INTERRUPTED and the command exits 130."""
from __future__ import annotations

import signal


class Terminated(KeyboardInterrupt):
    """Raised by the SIGTERM handler (a KeyboardInterrupt, so every interrupt path handles it)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(f"received signal {signal.Signals(signum).name}")


def install_sigterm_handler() -> None:
    """Make SIGTERM raise ``Terminated`` in the main thread."""
    signal.signal(signal.SIGTERM, _raise_terminated)
