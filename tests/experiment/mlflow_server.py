"""A real ``mlflow server`` for the tests that read the mirror through MLflow's REST API: started
on a free port of 127.0.0.1, waited for until it answers, always stopped (its whole process group)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(base: str, endpoint: str, **query) -> dict:
    with urllib.request.urlopen(f"{base}{endpoint}?{urllib.parse.urlencode(query)}", timeout=30) as response:
        return json.load(response)


def get_bytes(base: str, endpoint: str, **query) -> bytes:
    with urllib.request.urlopen(f"{base}{endpoint}?{urllib.parse.urlencode(query)}", timeout=30) as response:
        return response.read()


def post_json(base: str, endpoint: str, body: dict) -> dict:
    request = urllib.request.Request(f"{base}{endpoint}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def wait_until_up(base: str, server: subprocess.Popen, log: Path, timeout_s: float = 600.0) -> bool:
    """True once the server answers; False if it exited because its port was taken meanwhile
    (the free port is only free until someone else binds it). ``timeout_s`` only guards a hang."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            text = log.read_text()
            if "address already in use" in text.lower():
                return False
            pytest.fail(f"mlflow server exited with {server.returncode}:\n{text[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"mlflow server did not answer within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


def stop(server: subprocess.Popen) -> None:
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:
        pass


@contextmanager
def mlflow_server(backend_uri: str, artifact_root: Path, folder: Path) -> Iterator[str]:
    """``mlflow server`` on ``backend_uri`` (artifacts in ``artifact_root``), its log in
    ``folder/server.log``; yields its base URL and stops it however the block ends."""
    log = folder / "server.log"
    for _ in range(5):
        port = free_port()
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
                   "--default-artifact-root", str(artifact_root), "--host", "127.0.0.1", "--port", str(port),
                   "--workers", "1"]
        with log.open("w") as out:
            server = subprocess.Popen(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        base = f"http://127.0.0.1:{port}"
        try:
            if wait_until_up(base, server, log):
                yield base
                return
        finally:
            stop(server)
    pytest.fail("mlflow server found no free port in 5 tries")
