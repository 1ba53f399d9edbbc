"""Greedy, seeded rollouts of a batch of networks: the one way synevo scores a policy.

Every network of a batch plays one episode per seed, and episode `e` of every member starts
from `reset(seed=seeds[e])` (common random numbers across members). All live episodes advance
together with one batched forward per time step. CartPole runs on gymnasium's
numpy vector environment (vector.py); other tasks on one environment object per episode. A
member's returns do not depend on which other members share its batch, so results do not
depend on how a population is split between workers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch

from synevo.evaluation.policy import GreedyPolicy
from synevo.evaluation.tasks import TaskInfo, check_task
from synevo.evaluation.vector import TAIL, has_vector_env, play_vectorized, start_states
from synevo.models.base import GenomeModel
from synevo.threads import check_threads, limit_threads
from synevo.types import Fitness, Network, Population

logger = logging.getLogger(__name__)


@dataclass
class Rollouts:
    """The outcome of one `Evaluator.evaluate` call.

    Args:
        returns: undiscounted episode returns, `(batch, episodes)` float64.
        lengths: environment steps of each episode, `(batch, episodes)` int64.
        env_steps: all environment steps taken, `lengths.sum()`.
        seconds: where the time went: `"forward"` (policy), `"env"` (environment steps and
            per-step bookkeeping), `"total"` (the whole call); a RayEvaluator adds
            `"transfer"` (the call's time beyond its slowest worker's) and `"weights"` (weight
            construction, in `evaluate_genomes`), and sums the rest over workers.
    """

    returns: np.ndarray
    lengths: np.ndarray
    env_steps: int
    seconds: dict[str, float] = field(default_factory=dict)


class Evaluator:
    """Plays batches of networks greedily on one gymnasium task.

    Environments are created on first use, kept between calls (a pool that grows to
    `batch * episodes`, or one environment that draws the start states of the vector path)
    and left out of pickles, so an Evaluator is cheap to send to a worker.

    Args:
        env_id: a gymnasium id that `check_task` accepts.
        threads: torch and BLAS threads while evaluating, restored afterwards; None keeps
            their settings. The per-step matrices are small, so extra threads mostly add
            synchronization, which costs up to 50x on a busy machine.
        vectorize: play on gymnasium's numpy vector environment (CartPole only); None uses
            it where there is one. Both ways give the same returns.

    Raises:
        ValueError: from `check_task`, for an id synevo cannot run, threads < 1, or
            vectorize=True for a task without a numpy vector environment.
    """

    def __init__(self, env_id: str, threads: int | None = 1, vectorize: bool | None = None):
        self.threads = check_threads(threads)
        self.task: TaskInfo = check_task(env_id)
        self._envs: list[gym.Env] = []
        self._action_offset = 0
        available = has_vector_env(self.task.env_id)
        if vectorize and not available:
            raise ValueError(
                f"vectorize=True needs a numpy vector environment; {env_id} has none "
                f"(gymnasium has one for CartPole only)"
            )
        self.vectorized = available if vectorize is None else vectorize
        if self.task.max_episode_steps is None:
            logger.warning("%s has no time limit; an episode may never end", env_id)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_envs": []}

    def close(self) -> None:
        """Close and drop the pooled environments."""
        for env in self._envs:
            env.close()
        self._envs = []

    def evaluate(self, network: Network, seeds: Sequence[int]) -> Rollouts:
        """One greedy episode per seed for every network of the batch.

        Args:
            network: a batch of networks, weights `(batch, n_pre, n_post)` and biases
                `(batch, n_post)` per layer; input size obs_dim, output size n_actions.
            seeds: reset seeds, one per episode; episode `e` of every member uses `seeds[e]`.

        Raises:
            ValueError: no seeds, or the network's input or output size does not fit the task.
        """
        batch = self._check_network(network)
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("seeds must hold at least one seed, got an empty sequence")

        start = time.perf_counter()
        with limit_threads(self.threads):
            rollouts = self._play(GreedyPolicy(network), batch, seeds)
        seconds = time.perf_counter() - start
        rollouts.seconds["total"] = seconds
        logger.debug(
            "%s: %d networks x %d episodes, %d env steps in %.3f s (%.0f steps/s)",
            self.task.env_id,
            batch,
            len(seeds),
            rollouts.env_steps,
            seconds,
            rollouts.env_steps / max(seconds, 1e-9),
        )
        return rollouts

    def _check_network(self, network: Network) -> int:
        """The batch size of `network`, after checking it fits the task."""
        if len(network) == 0:
            raise ValueError("network must hold at least one layer, got an empty list")
        first, last = network[0][0], network[-1][0]
        if first.ndim != 3 or last.ndim != 3:
            raise ValueError(
                f"layer weights must have shape (batch, n_pre, n_post), got "
                f"{tuple(first.shape)} and {tuple(last.shape)}"
            )
        task = self.task
        if first.shape[1] != task.obs_dim:
            raise ValueError(
                f"network input size {first.shape[1]} does not match the observation size "
                f"{task.obs_dim} of {task.env_id}"
            )
        if last.shape[2] != task.n_actions:
            raise ValueError(
                f"network output size {last.shape[2]} does not match the {task.n_actions} "
                f"actions of {task.env_id}"
            )
        return int(first.shape[0])

    def _pool(self, size: int) -> list[gym.Env]:
        """At least `size` environments, created on demand."""
        while len(self._envs) < size:
            env = gym.make(self.task.env_id)
            self._action_offset = int(env.action_space.start)
            self._envs.append(env)
        return self._envs

    def _play(self, policy: GreedyPolicy, batch: int, seeds: list[int]) -> Rollouts:
        """Play every episode to its end, on the vector environment where there is one."""
        seconds = {"forward": 0.0, "env": 0.0}
        if self.vectorized:
            singles = self._pool(TAIL)
            starts = start_states(singles[0], seeds)
            returns, lengths = play_vectorized(self.task.env_id, policy, starts, singles, seconds)
        else:
            returns, lengths = self._play_envs(policy, batch, seeds, seconds)
        return Rollouts(returns, lengths, int(lengths.sum()), seconds)

    def _play_envs(
        self, policy: GreedyPolicy, batch: int, seeds: list[int], seconds: dict[str, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """One environment per episode; env `i` is member `i // episodes`, seed `i % episodes`.

        Returns returns `(batch, episodes)` float64 and lengths `(batch, episodes)` int64.
        """
        episodes, obs_dim = len(seeds), self.task.obs_dim
        size = batch * episodes
        envs, offset = self._pool(size), self._action_offset
        returns, lengths = [0.0] * size, [0] * size

        # Reset with common seeds
        obs = np.empty((batch, episodes, obs_dim), dtype=np.float32)
        flat = obs.reshape(size, obs_dim)
        for i in range(size):
            flat[i], _ = envs[i].reset(seed=seeds[i % episodes])

        # slot[i]: where env i's observation sits in the (shrinking) batch
        slot = list(range(size))
        live = [(i, envs[i].step) for i in range(size)]
        members, clock = batch, time.perf_counter
        while live:
            start = clock()
            actions = policy.act(obs).reshape(-1).tolist()
            stepped = clock()

            ended = False
            for i, step in live:
                o, r, terminated, truncated, _ = step(actions[slot[i]] + offset)
                returns[i] += float(r)
                lengths[i] += 1
                if terminated or truncated:
                    slot[i] = -1
                    ended = True
                else:
                    flat[slot[i]] = o
            seconds["forward"] += stepped - start
            seconds["env"] += clock() - stepped
            if not ended:
                continue

            live = [(i, step) for i, step in live if slot[i] >= 0]
            live_members = sorted({i // episodes for i, _ in live})
            # Drop finished members once they are half the batch (a member's outputs do
            # not depend on the rest of the batch, so this changes no action)
            if 0 < len(live_members) <= members // 2:
                policy, obs = self._shrink(
                    policy, obs, [i for i, _ in live], live_members, slot, episodes
                )
                flat, members = obs.reshape(-1, obs_dim), len(live_members)

        return (
            np.asarray(returns, dtype=np.float64).reshape(batch, episodes),
            np.asarray(lengths, dtype=np.int64).reshape(batch, episodes),
        )

    @staticmethod
    def _shrink(
        policy: GreedyPolicy,
        obs: np.ndarray,
        live: list[int],
        live_members: list[int],
        slot: list[int],
        episodes: int,
    ) -> tuple[GreedyPolicy, np.ndarray]:
        """Keep only the rows of members with a live episode; update `slot` in place."""
        row_of = {i // episodes: slot[i] // episodes for i in live}
        keep = [row_of[m] for m in live_members]
        new_row = {m: r for r, m in enumerate(live_members)}
        for i in live:
            slot[i] = new_row[i // episodes] * episodes + i % episodes

        return policy.rows(keep), np.ascontiguousarray(obs[keep])


def evaluate_population(
    model: GenomeModel,
    population: Population,
    evaluator: Evaluator,
    seeds: Sequence[int],
    samples: int = 0,
    generator: torch.Generator | None = None,
) -> tuple[Fitness, Rollouts]:
    """Mean greedy return of every genome of a population.

    With `samples=0` each genome is played through its expected network (`model.weights`,
    built by the evaluator's workers if it has an `evaluate_genomes` method);
    with `samples=s > 0` through `s` sampled networks (`model.sample`), and its fitness is the
    mean over those `s * len(seeds)` episodes.

    Args:
        population: `(popsize, D)` genomes.
        seeds: one reset seed per episode, shared by every network.
        samples: sampled networks per genome, or 0 for the expected network.
        generator: the random source of the sampled networks; needed when `samples > 0`.

    Returns:
        The mean returns `(popsize,)` in the population's dtype, and the rollouts, of batch
        `popsize` (or `popsize * samples`, row `m * samples + k` being sample `k` of member
        `m`).

    Raises:
        ValueError: a negative `samples`, or `samples > 0` without a generator.
    """
    if samples < 0:
        raise ValueError(f"samples must be >= 0 (0 = expected network), got {samples}")
    if samples > 0 and generator is None:
        raise ValueError(f"samples={samples} needs a torch.Generator to sample networks")

    if samples == 0 and hasattr(evaluator, "evaluate_genomes"):
        # a distributed evaluator builds the expected weights where it plays them
        rollouts = evaluator.evaluate_genomes(model, population, seeds)
    else:
        with torch.no_grad():
            if samples == 0:
                network = model.weights(population)
            else:
                network = model.sample(population, generator, samples)
        rollouts = evaluator.evaluate(network, seeds)

    per_member = rollouts.returns.reshape(population.shape[0], -1).mean(axis=1)
    return torch.as_tensor(per_member, dtype=population.dtype), rollouts
