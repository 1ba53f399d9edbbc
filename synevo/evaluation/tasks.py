"""Which gymnasium tasks synevo can run, and what it needs to know about each.

`check_task` validates an environment id against gymnasium's registry (discrete actions, a
flat observation vector) and returns its sizes, time limit and both "solved" thresholds:
gymnasium's own `reward_threshold` and the one the SynaptoGen authors used (SCIENCE.md
section 3).
"""

from __future__ import annotations

import difflib
import functools
import logging
from dataclasses import dataclass

import gymnasium as gym
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec, parse_env_id

logger = logging.getLogger(__name__)

PAPER_THRESHOLDS: dict[str, float] = {
    "CartPole": 195.0,
    "MountainCar": -200.0,
    "LunarLander": 200.0,
    "Acrobot": -500.0,
}
"""The SynaptoGen authors' "solved" returns, keyed by environment name without version.

The Acrobot and MountainCar values are the worst possible returns, so "solved" there only
means "reached the goal once before the time limit".
"""


@dataclass(frozen=True)
class TaskInfo:
    """What synevo needs to know about one discrete-action gymnasium task.

    Args:
        env_id: the registered id, e.g. `"CartPole-v1"`.
        obs_dim: length of the observation vector, the network's input size.
        n_actions: number of discrete actions, the network's output size.
        max_episode_steps: the registered time limit, or None if the task has none.
        gym_threshold: gymnasium's `reward_threshold`, or None if it defines none.
        paper_threshold: the SynaptoGen authors' threshold, or None for other tasks.
    """

    env_id: str
    obs_dim: int
    n_actions: int
    max_episode_steps: int | None
    gym_threshold: float | None
    paper_threshold: float | None


@functools.cache
def check_task(env_id: str) -> TaskInfo:
    """Validate a gymnasium id and describe the task; results are cached per id.

    Raises:
        ValueError: the id is malformed or unknown (close registered ids are suggested), its
            version is not registered (the registered versions are named), or the task has a
            non-discrete action space or an observation space that is not a 1-D Box.
    """
    spec = _registered_spec(env_id)
    try:
        env = gym.make(spec.id, disable_env_checker=True)
    except (gym.error.Error, ImportError) as err:
        raise ValueError(f"cannot create {env_id}: {err}") from err
    try:
        obs_space, act_space = env.observation_space, env.action_space
    finally:
        env.close()

    if not isinstance(act_space, spaces.Discrete):
        raise ValueError(f"synevo needs a discrete action space; {env_id} has {act_space}")
    if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) != 1:
        raise ValueError(f"synevo needs a 1-D Box observation space; {env_id} has {obs_space}")

    _, name, _ = parse_env_id(spec.id)
    threshold = spec.reward_threshold
    info = TaskInfo(
        env_id=spec.id,
        obs_dim=int(obs_space.shape[0]),
        n_actions=int(act_space.n),
        max_episode_steps=spec.max_episode_steps,
        gym_threshold=None if threshold is None else float(threshold),
        paper_threshold=PAPER_THRESHOLDS.get(name),
    )
    logger.debug("task %s: %s", env_id, info)
    return info


def _registered_spec(env_id: str) -> EnvSpec:
    """The registry entry of `env_id`, or a ValueError that says what is registered instead."""
    registry = gym.envs.registry
    if env_id in registry:
        return registry[env_id]

    try:
        namespace, name, _ = parse_env_id(env_id)
    except gym.error.Error as err:
        raise ValueError(
            f"malformed environment id {env_id!r}; ids look like 'Name-vN', e.g. 'CartPole-v1'"
        ) from err

    # Same name, other version: e.g. the paper's LunarLander-v2, replaced by v3 in gymnasium 1.x
    versions = sorted(
        spec.id
        for spec in registry.values()
        if spec.namespace == namespace and spec.name == name and spec.version is not None
    )
    if len(versions) == 1:
        raise ValueError(
            f"{env_id} is not registered in gymnasium {gym.__version__}; use {versions[0]}"
        )
    if versions:
        raise ValueError(
            f"{env_id} is not registered in gymnasium {gym.__version__}; "
            f"registered versions are {', '.join(versions)}"
        )

    close = difflib.get_close_matches(env_id, list(registry), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see gymnasium.envs.registry"
    raise ValueError(f"unknown environment id {env_id!r}; {hint}")
