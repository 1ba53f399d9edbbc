"""Session fixtures: one real Ray cluster for the whole test session, reached by address."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

# The session's cluster and everything that joins it (this process, command-line
# subprocesses) run without Ray's token authentication: a token minted by `ray start` was
# not accepted from ~/.ray/auth_token by clients on this machine (Ray 2.60).
os.environ["RAY_AUTH_MODE"] = "disabled"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory) -> str:
    """Start a 2-CPU Ray head with `ray start --block` and yield its address; stop it at the end.

    This is a cluster reached by address, as on a real cluster; tests that need a runtime
    started by synevo itself run the command line without an address. The head runs in its
    own process group, and only that group is stopped: `ray stop` would also kill every other
    Ray runtime on the machine, such as a study running beside the tests.
    """
    ray_cli = str(Path(sys.executable).parent / "ray")
    port = free_port()
    temp = tmp_path_factory.mktemp("ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    command = [
        *(ray_cli, "start", "--head", "--block", f"--port={port}", "--num-cpus=2"),
        *("--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"),
    ]
    log = open(temp / "ray_start.log", "wb")
    head = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait_for_port(port, head, temp / "ray_start.log")
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        _stop_group(head)
        log.close()


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"ray start exited: {log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError as error:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Ray head on port {port} after {timeout} s") from error
            time.sleep(0.2)


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the process group of `process`, then SIGKILL whatever of it is left."""
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)


@pytest.fixture(scope="session")
def ray_session(ray_address: str) -> str:
    """This test process connected to the session's Ray cluster."""
    from synevo.distributed import init_ray

    init_ray(ray_address)
    return ray_address


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on a free local port; yields its http URI."""
    root = tmp_path_factory.mktemp("server")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--workers",
        "1",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{root}/s.db",
        "--artifacts-destination",
        str(root / "art"),
    ]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = open(root / "server.log", "wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(root / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("mlflow server not healthy after 90 s")
            time.sleep(0.5)
        yield uri
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
