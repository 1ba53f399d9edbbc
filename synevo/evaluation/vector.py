"""Rollouts on gymnasium's numpy-vectorized CartPole: one array step for every episode.

Gymnasium ships a numpy vector version of CartPole only (`CartPoleVectorEnv`, the
`vector_entry_point` of CartPole-v0 and -v1; the other vector entry points are JAX). Its
physics is the single environment's, in float64, operation for operation: over 214,358 steps
of 512 episodes (numpy 2.4, gymnasium 1.4) every state and observation was bit-identical to
512 single environments, so the returns of this path equal those of one environment per
episode, which tests/test_vector_eval.py checks.

Episode `e` of every member starts from the state that `gym.make(env_id).reset(seed=seeds[e])`
draws: one plain environment is reset per seed and its state copied into the vector
environment's columns. The vector environment resets a finished column by itself on the next
step; those steps are ignored and not counted, and members whose episodes have all ended are
dropped from the arrays (and the network batch) once a quarter of the rows are theirs. The
last `TAIL` running episodes finish on one plain environment each, whose step costs a fifth
of a small vector step's: a random population often has a few members that balance for the
whole time limit while the rest fall within 20 steps.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

from synevo.evaluation.policy import GreedyPolicy

# numpy vector environments whose physics was checked against the single environment's
VECTOR_ENTRY_POINTS = ("gymnasium.envs.classic_control.cartpole:CartPoleVectorEnv",)

# running episodes from which on each finishes on its own environment
TAIL = 8


def has_vector_env(env_id: str) -> bool:
    """Whether `env_id` runs on a checked numpy vector environment."""
    return gym.spec(env_id).vector_entry_point in VECTOR_ENTRY_POINTS


def start_states(env: gym.Env, seeds: list[int]) -> np.ndarray:
    """The float64 states `(state_dim, episodes)` that `env.reset(seed=s)` draws per seed."""
    states = []
    for seed in seeds:
        env.reset(seed=seed)
        states.append(np.array(env.unwrapped.state, dtype=np.float64))
    return np.stack(states, axis=1)


def play_vectorized(
    env_id: str,
    policy: GreedyPolicy,
    starts: np.ndarray,
    singles: list[gym.Env],
    seconds: dict[str, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Play one greedy episode per start state for every network of the policy's batch.

    Args:
        starts: start states `(state_dim, episodes)` float64.
        singles: at least `TAIL` single environments of `env_id` for the last episodes.
        seconds: accumulates the time spent in the policy (`"forward"`) and in the
            environments (`"env"`, with the per-step bookkeeping).

    Returns:
        Returns `(batch, episodes)` float64 and lengths `(batch, episodes)` int64.
    """
    batch, episodes = policy.batch, starts.shape[1]
    size = batch * episodes
    returns = np.zeros(size, dtype=np.float64)
    lengths = np.zeros(size, dtype=np.int64)

    # columns of the vector environment: env `i` is member `i // episodes`, seed `i % episodes`
    columns = np.arange(size)
    running = np.ones(size, dtype=bool)
    env = _vector_env(env_id, np.tile(starts, batch), np.zeros(size, dtype=np.int32))
    obs = np.ascontiguousarray(env.state.T, dtype=np.float32)
    col_returns, col_lengths = returns.copy(), lengths.copy()

    clock = time.perf_counter
    while True:
        start = clock()
        actions = policy.act(obs.reshape(-1, episodes, obs.shape[1])).reshape(-1)
        stepped = clock()
        obs, reward, terminated, truncated, _ = env.step(actions)
        np.add(col_returns, reward, out=col_returns, where=running)
        col_lengths += running
        running &= ~(terminated | truncated)
        seconds["forward"] += stepped - start
        seconds["env"] += clock() - stepped

        live = np.count_nonzero(running)
        if live <= TAIL:
            alone = np.flatnonzero(running)
            tail = policy.rows(alone // episodes)
            extra = _play_alone(tail, env.state[:, alone], env.steps[alone], env, singles, seconds)
            col_returns[alone] += extra[0]
            col_lengths[alone] += extra[1]
            break
        if live <= 3 * len(running) // 4:
            keep = _live_columns(running, episodes)
            if len(keep) < len(running):
                returns[columns] = col_returns
                lengths[columns] = col_lengths
                columns, running = columns[keep], running[keep]
                col_returns, col_lengths = col_returns[keep], col_lengths[keep]
                env = _vector_env(env_id, env.state[:, keep], env.steps[keep])
                policy = policy.rows(keep[::episodes] // episodes)
                obs = obs[keep]
        obs = np.ascontiguousarray(obs, dtype=np.float32)

    returns[columns] = col_returns
    lengths[columns] = col_lengths
    return returns.reshape(batch, episodes), lengths.reshape(batch, episodes)


def _play_alone(
    policy: GreedyPolicy,
    states: np.ndarray,
    steps: np.ndarray,
    vector: gym.vector.VectorEnv,
    singles: list[gym.Env],
    seconds: dict[str, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Finish `k` running episodes on one single environment each.

    policy: one member per episode; states `(state_dim, k)` and steps `(k,)` taken from the
    vector environment `vector`. Returns the further returns and lengths, `(k,)` each.
    """
    clock = time.perf_counter
    k = states.shape[1]
    envs = [single.unwrapped for single in singles[:k]]
    for env, state in zip(envs, states.T, strict=True):
        env.reset()  # clears the single environment's end-of-episode bookkeeping
        env.state = state.copy()
    left = (vector.max_episode_steps - steps).tolist()
    returns, lengths = [0.0] * k, [0] * k
    obs = np.ascontiguousarray(states.T[:, None, :], dtype=np.float32)
    live = list(range(k))
    while live:
        start = clock()
        actions = policy.act(obs).reshape(-1).tolist()
        stepped = clock()
        for i in live:
            o, r, terminated, _, _ = envs[i].step(actions[i])
            returns[i] += float(r)
            lengths[i] += 1
            obs[i, 0] = o
            if terminated or lengths[i] >= left[i]:
                left[i] = -1
        live = [i for i in live if left[i] >= 0]
        seconds["forward"] += stepped - start
        seconds["env"] += clock() - stepped
    return np.array(returns), np.array(lengths, dtype=np.int64)


def _live_columns(running: np.ndarray, episodes: int) -> np.ndarray:
    """Columns of the members that still have a running episode, `(k * episodes,)`."""
    members = running.reshape(-1, episodes).any(axis=1)
    return np.flatnonzero(np.repeat(members, episodes))


def _vector_env(env_id: str, state: np.ndarray, steps: np.ndarray) -> gym.vector.VectorEnv:
    """A vector environment of `state.shape[1]` columns set to `state`, `steps` into their
    episodes (for the time limit)."""
    env = gym.make_vec(env_id, num_envs=state.shape[1], vectorization_mode="vector_entry_point")
    env.reset(seed=0)  # seeds only the resets of finished columns, whose steps are ignored
    base = env.unwrapped
    base.state = np.array(state, dtype=np.float64)
    base.steps = np.array(steps, dtype=np.int32)
    return base
