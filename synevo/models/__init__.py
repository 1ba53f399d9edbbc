"""The model room: genome-to-network maps, their registry and `build_model`."""

from __future__ import annotations

import importlib
import inspect
import logging

from synevo.models.base import GenomeModel, GenomeNetwork, forward
from synevo.models.mlp import PlainMLP
from synevo.models.synaptogen import SynaptoGen

logger = logging.getLogger(__name__)

MODELS: dict[str, type[GenomeModel]] = {"synaptogen": SynaptoGen, "mlp": PlainMLP}

# Packages that register further models when imported; loaded once, on the first name
# `MODELS` lacks, so the framework imports without them.
_PLUGINS = ("baselines",)
_plugins_loaded = False

__all__ = [
    "MODELS",
    "GenomeModel",
    "GenomeNetwork",
    "PlainMLP",
    "SynaptoGen",
    "build_model",
    "forward",
    "model_names",
    "register_model",
]


def register_model(name: str, cls: type[GenomeModel]) -> None:
    """Add `cls` to the registry under `name`; registering the same class again is a no-op.

    Raises:
        ValueError: if `name` already belongs to another class or `cls` is not a GenomeModel.
    """
    if not (isinstance(cls, type) and issubclass(cls, GenomeModel)):
        raise ValueError(f"model {name!r} must be a GenomeModel subclass, got {cls!r}")
    known = MODELS.get(name)
    if known is not None and known is not cls:
        raise ValueError(f"model name {name!r} is taken by {known.__module__}.{known.__name__}")
    MODELS[name] = cls


def model_names() -> list[str]:
    """Every registered model name, plugin packages included, sorted."""
    _load_plugins()
    return sorted(MODELS)


def _load_plugins() -> None:
    """Import the plugin packages once; a missing package is skipped."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for package in _PLUGINS:
        try:
            importlib.import_module(package)
        except ModuleNotFoundError as error:
            if error.name != package:
                raise
            logger.debug("model plugin package %r is not installed", package)


def model_settings(name: str) -> list[str]:
    """The keyword settings `build_model` accepts for model `name`, `hidden` first.

    Raises:
        ValueError: if `name` is not a registered model.
    """
    if name not in MODELS:
        _load_plugins()
    if name not in MODELS:
        raise ValueError(f"model name {name!r} is unknown; allowed: {model_names()}")
    params = inspect.signature(MODELS[name].__init__).parameters
    return ["hidden"] + [p for p in params if p not in ("self", "layer_sizes")]


def build_model(name: str, obs_dim: int, n_actions: int, **settings) -> GenomeModel:
    """Build model `name` for a task with `obs_dim` inputs and `n_actions` outputs.

    `hidden` (list of ints, default `[128]`) sets the hidden layers; every other setting is
    passed to the model's constructor.

    Raises:
        ValueError: for an unknown model name, unknown settings or bad hidden sizes.
    """
    allowed = model_settings(name)
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ValueError(f"settings {unknown} are unknown for model {name!r}; allowed: {allowed}")
    hidden = settings.pop("hidden", [128])
    if isinstance(hidden, int) or any(int(h) != h or h < 1 for h in hidden):
        raise ValueError(f"hidden must be a list of positive ints, got {hidden!r}")
    if settings.get("searched") == "all":
        settings["searched"] = None
    layer_sizes = [int(obs_dim), *(int(h) for h in hidden), int(n_actions)]
    return MODELS[name](layer_sizes, **settings)
