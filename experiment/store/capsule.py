"""The environment capsule: what code, interpreter, packages and machine an experiment ran on."""
from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from tools.version import SPIKELAB_VERSION

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: Distributions whose versions are recorded (missing ones are left out).
PACKAGES = ("torch", "numpy", "scipy", "pandas", "sqlalchemy", "alembic", "mlflow", "pyyaml", "matplotlib", "psutil",
            "numba", "h5py", "mlxtend", "nir", "tensorboard")  # the last: fused cells, data sets, interop, loggers


def _git(*args: str, root: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(root: Path = PROJECT_ROOT) -> tuple[str | None, bool | None]:
    """(HEAD sha, whether tracked or untracked files differ from it); (None, None) without git."""
    sha = _git("rev-parse", "HEAD", root=root)
    if sha is None:
        return None, None
    status = _git("status", "--porcelain", root=root)
    return sha.strip(), None if status is None else bool(status.strip())


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def cpu_model() -> str | None:
    """The ``model name`` of /proc/cpuinfo, else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def environment_capsule(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """git_sha, git_dirty, python, packages (Spikelab's own version as ``spikelab``), host, cpu,
    cpu_count, platform."""
    sha, dirty = git_state(root)
    return {
        "git_sha": sha,
        "git_dirty": dirty,
        "python": sys.version.split()[0],
        "packages": {"spikelab": SPIKELAB_VERSION, **package_versions()},
        "host": socket.gethostname(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
