"""Starting or joining the Ray runtime that synevo distributes work on."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


def import_ray():
    """Import Ray, or say what to install."""
    try:
        import ray
    except ImportError as error:  # pragma: no cover - ray is a dependency
        raise ImportError("synevo needs Ray for workers > 0: pip install 'ray[default]'") from error
    return ray


def init_ray(address: str | None = None, num_cpus: int | None = None) -> str:
    """Join the cluster at `address` (or `RAY_ADDRESS`), else start a local runtime.

    A local runtime is sized to `num_cpus` (default: all cores of the machine). Calling it
    again while Ray is up does nothing. Returns a short description for the logs.
    """
    ray = import_ray()
    if ray.is_initialized():
        return "already running"
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        context = ray.init(address=address, logging_level=logging.WARNING)
        where = f"cluster at {address}"
    else:
        # "local" starts a fresh runtime even where `ray start` left one running
        cpus = num_cpus or os.cpu_count() or 1
        context = ray.init(
            address="local",
            num_cpus=cpus,
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
        where = f"local runtime with {cpus} CPUs"
    cpus = ray.cluster_resources().get("CPU", 0)
    logger.info("Ray: %s (%s CPUs, node %s)", where, cpus, context.address_info.get("node_id"))
    return where


def shutdown_ray() -> None:
    """Disconnect from Ray (stopping the runtime if this process started it)."""
    ray = import_ray()
    if ray.is_initialized():
        ray.shutdown()
