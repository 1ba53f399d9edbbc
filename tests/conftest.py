"""Session fixtures: one real Ray cluster for the whole test session, reached by address."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory) -> str:
    """Start a 2-CPU Ray head with `ray start` and yield its address; stop it at the end.

    This is a cluster reached by address, as on a real cluster; tests that need a runtime
    started by synevo itself run the command line without an address.
    """
    ray_cli = str(Path(sys.executable).parent / "ray")
    port = free_port()
    temp = tmp_path_factory.mktemp("ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    command = [
        ray_cli,
        "start",
        "--head",
        f"--port={port}",
        "--num-cpus=2",
        "--node-ip-address=127.0.0.1",
        "--include-dashboard=false",
        f"--temp-dir={temp}",
        "--disable-usage-stats",
    ]
    subprocess.run(command, check=True, env=env, capture_output=True, timeout=120)
    address = f"127.0.0.1:{port}"
    try:
        yield address
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def ray_session(ray_address: str) -> str:
    """This test process connected to the session's Ray cluster."""
    from synevo.distributed import init_ray

    init_ray(ray_address)
    return ray_address
