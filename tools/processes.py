"""Is the worker process that claimed a run still alive?"""
from __future__ import annotations

import socket
from datetime import datetime, timezone

#: Slack between a claim's recorded start and the start time of the process that made it (clocks
#: and the kernel's process start time are coarse; a pid reused by a process that started later
#: than this after the claim is not the worker).
CLAIM_SLACK_S = 2.0


def process_is_dead(host: str | None, pid: int | None, claimed_at: datetime | None = None) -> bool | None:
    """Whether the worker ``pid`` on ``host`` that claimed a run (at ``claimed_at``, UTC) is gone.

    True: it ran on this host and is gone, a zombie, or its pid now belongs to a process started
    after the claim (pid reuse). False: it runs on this host. None: another host (or no pid), which
    only its heartbeat can tell."""
    if host != socket.gethostname() or pid is None:
        return None
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        if claimed_at is not None:
            claimed = claimed_at if claimed_at.tzinfo else claimed_at.replace(tzinfo=timezone.utc)
            if process.create_time() > claimed.timestamp() + CLAIM_SLACK_S:
                return True
        return False
    except psutil.NoSuchProcess:
        return True
