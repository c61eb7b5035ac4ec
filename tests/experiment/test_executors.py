"""Executors refuse, before anything is written, to work where they cannot."""
from __future__ import annotations

import socket

import pytest

from experiment.executors import DaskExecutor, make_executor
from settings.errors import ConfigError


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the with block ends


def test_an_unreachable_dask_scheduler_is_a_config_error():
    address = f"tcp://127.0.0.1:{closed_port()}"
    with pytest.raises(ConfigError) as info:
        DaskExecutor(1, address, connect_timeout_s=2.0).check()
    assert f"executor.address no Dask scheduler answers at {address!r}" in str(info.value)
    assert "use backend: loky" in str(info.value)


def test_local_executors_need_no_check():
    for backend in ("inline", "loky", "dask"):  # dask without an address starts a local cluster itself
        make_executor(backend, 2).check()


def test_dask_without_the_package_is_a_config_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "distributed" else real(name, *a))
    with pytest.raises(ConfigError) as info:
        make_executor("dask", 2).check()
    assert "executor.backend is dask, but dask.distributed is not installed" in str(info.value)
