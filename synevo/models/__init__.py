"""The model room: genome-to-network maps, their registry and `build_model`."""

from __future__ import annotations

import inspect

from synevo.models.base import GenomeModel, GenomeNetwork, forward
from synevo.models.mlp import PlainMLP
from synevo.models.synaptogen import SynaptoGen

MODELS: dict[str, type[GenomeModel]] = {"synaptogen": SynaptoGen, "mlp": PlainMLP}

__all__ = [
    "MODELS",
    "GenomeModel",
    "GenomeNetwork",
    "PlainMLP",
    "SynaptoGen",
    "build_model",
    "forward",
]


def model_settings(name: str) -> list[str]:
    """The keyword settings `build_model` accepts for model `name`, `hidden` first.

    Raises:
        ValueError: if `name` is not a registered model.
    """
    if name not in MODELS:
        raise ValueError(f"model name {name!r} is unknown; allowed: {sorted(MODELS)}")
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
