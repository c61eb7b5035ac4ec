"""Is the worker process that claimed a run still alive?"""
from __future__ import annotations

import socket


def process_is_dead(host: str | None, pid: int | None) -> bool:
    """True only when ``pid`` ran on this host and is gone (or a zombie); unknown hosts are alive."""
    if host != socket.gethostname() or pid is None:
        return False
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
