"""DQN on the genome's expected weights: the gradient family, built on Stable-Baselines3.

The paper (SCIENCE.md section 3) trains SynaptoGen with Stable-Baselines3's DQN and the
rl-baselines3-zoo settings of each task. Here the Q-network is a `GenomeNetwork`: the genome
vector is its only trainable parameter, and every forward pass maps the genome to the expected
weights before running the network, so gradient descent searches exactly the space evolution
searches. This module owns the paper's settings table, the genome Q-network policy, and the
SB3 callback that runs the shared checkpoint evaluations (`Checkpointer`) inside SB3's loop.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.envs.registration import parse_env_id
from stable_baselines3 import DQN as SB3DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.dqn.policies import DQNPolicy

from synevo.models.base import GenomeModel, forward
from synevo.optimizers.base import (
    Checkpointer,
    Metrics,
    Optimizer,
    OptimizerResult,
    Problem,
    Reporter,
    seeded_generator,
)
from synevo.types import Genome, Network

logger = logging.getLogger(__name__)

PAPER_SETTINGS: dict[str, dict[str, int | float]] = {
    "CartPole": dict(
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1000,
        gamma=0.99,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
    ),
    "MountainCar": dict(
        batch_size=128,
        buffer_size=10_000,
        learning_starts=1000,
        gamma=0.98,
        target_update_interval=600,
        train_freq=16,
        gradient_steps=8,
        exploration_fraction=0.2,
        exploration_final_eps=0.07,
    ),
    "LunarLander": dict(
        batch_size=128,
        buffer_size=50_000,
        learning_starts=0,
        gamma=0.99,
        target_update_interval=250,
        train_freq=4,
        gradient_steps=-1,
        exploration_fraction=0.12,
        exploration_final_eps=0.1,
    ),
    "Acrobot": dict(
        batch_size=128,
        buffer_size=50_000,
        learning_starts=0,
        gamma=0.99,
        target_update_interval=250,
        train_freq=4,
        gradient_steps=-1,
        exploration_fraction=0.12,
        exploration_final_eps=0.1,
    ),
}
"""The rl-baselines3-zoo DQN settings the paper used, keyed by task name without version."""

FALLBACK_TASK = "CartPole"
"""Whose paper settings a task outside `PAPER_SETTINGS` gets (with a warning)."""

# field -> (accepted types, check, what is allowed)
_RULES: dict[str, tuple[tuple[type, ...], Any, str]] = {
    "learning_rate": ((int, float), lambda v: v > 0, "a number > 0"),
    "batch_size": ((int,), lambda v: v >= 1, "None or an int >= 1"),
    "buffer_size": ((int,), lambda v: v >= 1, "None or an int >= 1"),
    "learning_starts": ((int,), lambda v: v >= 0, "None or an int >= 0"),
    "gamma": ((int, float), lambda v: 0 <= v <= 1, "None or a number in [0, 1]"),
    "target_update_interval": ((int,), lambda v: v >= 1, "None or an int >= 1"),
    "train_freq": ((int,), lambda v: v >= 1, "None or an int >= 1 (env steps)"),
    "gradient_steps": ((int,), lambda v: v == -1 or v >= 1, "None, -1 or an int >= 1"),
    "exploration_fraction": ((int, float), lambda v: 0 < v <= 1, "None or a number in (0, 1]"),
    "exploration_final_eps": ((int, float), lambda v: 0 <= v <= 1, "None or a number in [0, 1]"),
}


@dataclass(frozen=True)
class DQNSettings:
    """DQN settings; every `None` means "the paper's value for the task" (`PAPER_SETTINGS`).

    Raises:
        ValueError: a field holds a value of the wrong type or out of range.
    """

    learning_rate: float = 3e-4
    """Adam step size; the paper swept {3e-2, 3e-3, 3e-4}."""
    batch_size: int | None = None
    """Transitions per gradient step."""
    buffer_size: int | None = None
    """Replay buffer capacity, in transitions."""
    learning_starts: int | None = None
    """Env steps of uniformly random actions before the first gradient step."""
    gamma: float | None = None
    """Discount factor."""
    target_update_interval: int | None = None
    """Env steps between two copies of the Q-network's genome into the target network."""
    train_freq: int | None = None
    """Env steps collected between two training phases."""
    gradient_steps: int | None = None
    """Gradient steps per training phase; -1 means as many as env steps collected."""
    exploration_fraction: float | None = None
    """Fraction of the budget over which epsilon decays linearly from 1."""
    exploration_final_eps: float | None = None
    """Epsilon after the decay."""

    def __post_init__(self):
        for name, (types, check, allowed) in _RULES.items():
            value = getattr(self, name)
            if value is None and name != "learning_rate":
                continue
            valid_type = isinstance(value, types) and not isinstance(value, bool)
            if not valid_type or not check(value):
                raise ValueError(f"DQN setting {name}={value!r} is not allowed; use {allowed}")

    def resolve(self, task: str) -> dict[str, int | float]:
        """Every setting for `task`, the `None` ones replaced by the paper's values."""
        values = dataclasses.asdict(self)
        paper = paper_settings(task)
        return {k: paper[k] if v is None else v for k, v in values.items()}


def paper_settings(task: str) -> dict[str, int | float]:
    """The paper's rl-zoo settings for a gymnasium id, e.g. `"CartPole-v1"`.

    Tasks outside the table get the CartPole row, with a warning.
    """
    _, name, _ = parse_env_id(task)
    if name not in PAPER_SETTINGS:
        logger.warning(
            "no paper DQN settings for %s (known: %s); using the %s row",
            task,
            sorted(PAPER_SETTINGS),
            FALLBACK_TASK,
        )
        name = FALLBACK_TASK
    return dict(PAPER_SETTINGS[name])


class GenomeQNetwork(BasePolicy):
    """Q-values `(batch, n_actions)` from flattened float32 observations `(batch, obs_dim)`.

    `q_net` is a `GenomeNetwork`, whose only parameter is the genome `(D,)`. Without autograd
    (acting, and the target network's TD targets) the expected weights are cached until the
    genome changes: the genome is constant over a whole rollout and over a whole training
    phase of the target network, and computing the weights costs far more than using them.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        model: GenomeModel,
        genome: Genome,
        normalize_images: bool = True,
    ):
        super().__init__(
            observation_space,
            action_space,
            features_extractor=features_extractor,
            normalize_images=normalize_images,
        )
        self.q_net = model.network(genome)
        self._cached_genome: Genome | None = None
        self._cached_network: Network = []

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.extract_features(obs, self.features_extractor)
        if torch.is_grad_enabled():
            return self.q_net(features)
        return forward(self._expected_network(), features.float().unsqueeze(0)).squeeze(0)

    def _predict(self, observation: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return self(observation).argmax(dim=1).reshape(-1)

    def _expected_network(self) -> Network:
        """The genome's expected network (batch 1), recomputed only when the genome changed."""
        genome = self.q_net.genome
        if self._cached_genome is None or not torch.equal(genome, self._cached_genome):
            self._cached_genome = genome.detach().clone()
            self._cached_network = self.q_net.model.weights(self._cached_genome.unsqueeze(0))
        return self._cached_network


class GenomeDQNPolicy(DQNPolicy):
    """SB3's DQN policy whose Q-network and target network are both built from one genome.

    Pass `policy_kwargs={"model": model, "genome": genome}`. Each `make_q_net` call clones the
    genome, so the target network is a separate copy that starts equal to the Q-network.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        model: GenomeModel,
        genome: Genome,
        **kwargs: Any,
    ):
        # DQNPolicy.__init__ ends by calling make_q_net, which needs these two
        self.genome_model = model
        self.initial_genome = genome.detach().clone()
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def make_q_net(self) -> GenomeQNetwork:
        return GenomeQNetwork(
            self.observation_space,
            self.action_space,
            self.make_features_extractor(),
            self.genome_model,
            self.initial_genome,
            normalize_images=self.normalize_images,
        ).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        return {**data, "model": self.genome_model, "genome": self.initial_genome}


class _Checkpoints(BaseCallback):
    """Evaluates the Q-network's genome at step 0, every `eval_every` steps and at the end.

    Also stops training at exactly `budget` env steps: SB3 collects whole `train_freq` rollouts
    and would otherwise overshoot a budget that is not a multiple of it.
    """

    def __init__(self, problem: Problem, train_freq: int, report: Reporter | None):
        super().__init__()
        self.problem, self.train_freq, self.report = problem, train_freq, report
        self.checkpointer = Checkpointer(problem)
        self.history: list[Metrics] = []
        self.start = time.perf_counter()

    def _on_training_start(self) -> None:
        self._checkpoint()

    def _on_step(self) -> bool:
        steps, budget = self.num_timesteps, self.problem.budget
        if steps < budget:
            if self.checkpointer.due(steps):
                self._checkpoint()
            return True

        # a rollout ending at the budget still gets its training phase; a partial one does not
        return steps % self.train_freq == 0

    def _on_training_end(self) -> None:
        self._checkpoint()

    def _checkpoint(self) -> None:
        genome = self.model.q_net.q_net.genome
        row: Metrics = {
            "env_steps": float(self.num_timesteps),
            **self.checkpointer.evaluate(genome, self.num_timesteps),
        }
        episodes = self.model.ep_info_buffer
        if episodes:
            row["rollout/return_mean"] = float(np.mean([e["r"] for e in episodes]))
        loss = self.model.logger.name_to_value.get("train/loss")
        if loss is not None:
            row["train/loss"] = float(loss)
        elapsed = time.perf_counter() - self.start
        row["train/exploration_rate"] = float(self.model.exploration_rate)
        row["time/env_steps_per_s"] = self.num_timesteps / elapsed
        row["time/elapsed_s"] = elapsed

        self.history.append(row)
        logger.debug("checkpoint %s", row)
        if self.report is not None:
            self.report(row)


class DQN(Optimizer):
    """Stable-Baselines3 DQN whose Q-network is the genome's expected network."""

    name: ClassVar[str] = "dqn"
    family: ClassVar[str] = "gradient"
    Settings: ClassVar[type] = DQNSettings

    def params(self, task: str | None = None) -> dict[str, Any]:
        """The settings, with the paper's values filled in when `task` is given."""
        settings = self.settings.resolve(task) if task else dataclasses.asdict(self.settings)
        return {"optimizer": self.name, **settings}

    def run(self, problem: Problem, report: Reporter | None = None) -> OptimizerResult:
        """Train for exactly `problem.budget` env steps; keep the best checkpoint's genome.

        Raises:
            ValueError: the task is unknown or not discrete, or the model does not fit it.
        """
        agent = self.make_agent(problem)
        # an in-memory logger: SB3's default one makes an empty folder in /tmp per run
        agent.set_logger(Logger(folder=None, output_formats=[]))
        checkpoints = _Checkpoints(problem, agent.train_freq.frequency, report)
        try:
            # no log dumps, so the logger keeps the last train/loss for the checkpoint rows
            agent.learn(total_timesteps=problem.budget, callback=checkpoints, log_interval=None)
        finally:
            agent.env.close()
            checkpoints.checkpointer.evaluator.close()
        return checkpoints.checkpointer.result(agent.num_timesteps, checkpoints.history)

    def make_agent(self, problem: Problem) -> SB3DQN:
        """The SB3 agent, its Q-network built from the genome `init_genome` draws.

        Raises:
            ValueError: the task is unknown or not discrete, or the model does not fit it.
        """
        _check_sizes(problem.model, problem.task)
        genome = problem.model.init_genome(seeded_generator(problem.seed))
        settings = self.settings.resolve(problem.task)
        logger.info(
            "DQN on %s: genome size %d, settings %s",
            problem.task,
            problem.model.genome_size,
            settings,
        )
        return SB3DQN(
            GenomeDQNPolicy,
            gym.make(problem.task),
            policy_kwargs={"model": problem.model, "genome": genome},
            seed=problem.seed,
            device="cpu",
            verbose=0,
            **settings,
        )


def _check_sizes(model: GenomeModel, task: str) -> None:
    """Raise a ValueError if the model's input and output sizes do not fit the task."""
    from synevo.evaluation import check_task

    info = check_task(task)
    n_in, n_out = model.layer_sizes[0], model.layer_sizes[-1]
    if (n_in, n_out) != (info.obs_dim, info.n_actions):
        raise ValueError(
            f"model layer sizes {list(model.layer_sizes)} do not fit {task}: "
            f"allowed input {info.obs_dim} and output {info.n_actions}"
        )
