"""synevo's evaluation against what the environments alone can do, in the same process.

- CartPole-v1: gymnasium's numpy vector environment with 256 copies and random actions,
  beside synevo evaluating a population of 256 networks whose episodes all run long (MLPs
  4-128-2 that push the cart towards the pole's fall, perturbed per member; the SynaptoGen
  network of G = 16 has the same shape and per-step cost, so it is not repeated), and a
  random SynaptoGen population (most episodes end within 20 steps, a few run to the limit).
- Acrobot-v1, MountainCar-v0, LunarLander-v3: one environment object stepped with random
  actions, beside synevo evaluating 64 SynaptoGen networks (one environment per episode),
  in-process and, when Ray is used, with 2 workers (wall time, both).
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import torch

from benchmarks.common import cpu_seconds, load, model_for, population, table
from synevo.evaluation import Evaluator, evaluate_population
from synevo.threads import set_threads
from synevo.types import Network

PER_ENV_TASKS = ("Acrobot-v1", "MountainCar-v0", "LunarLander-v3")


def balancing_mlps(batch: int, seed: int = 0) -> Network:
    """MLPs `(4, 128, 2)` that balance the pole, perturbed per member."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.tensor([0.0, 0.5, 1.0, 0.5]).view(1, 4, 1)
    w1 = direction * (torch.rand(batch, 1, 128, generator=g) + 0.5)
    w1 = w1 + 0.3 * torch.randn(batch, 4, 128, generator=g)
    w2 = torch.zeros(batch, 128, 2)
    w2[:, :, 1], w2[:, :, 0] = 1.0 / 128, -1.0 / 128
    w2 = w2 + 0.003 * torch.randn(batch, 128, 2, generator=g)
    return [(w1, torch.zeros(batch, 128)), (w2, torch.zeros(batch, 2))]


def vector_random_rate(copies: int, steps: int) -> float:
    """Env steps per CPU second of CartPoleVectorEnv with random actions."""
    env = gym.make_vec("CartPole-v1", num_envs=copies, vectorization_mode="vector_entry_point")
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, size=(steps, copies))
    seconds, _ = cpu_seconds(lambda: [env.step(a) for a in actions])
    return copies * steps / seconds


def single_random_rate(env_id: str, steps: int) -> float:
    """Env steps per CPU second of one `gym.make(env_id)` with random actions."""
    env = gym.make(env_id)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, env.action_space.n, size=steps).tolist()

    def play() -> None:
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()

    seconds, _ = cpu_seconds(play)
    return steps / seconds


def cartpole_rows(quick: bool) -> list[list[object]]:
    """[what, env steps/s, ratio to the vector env, split, load] for CartPole at 256."""
    note = load()
    reference = vector_random_rate(256, 500 if quick else 2000)
    evaluator = Evaluator("CartPole-v1")
    rows = [["CartPoleVectorEnv x256, random actions", reference, "1.00", "", note]]

    network = balancing_mlps(256)
    evaluator.evaluate(network, [0])
    seconds, rollouts = cpu_seconds(lambda: evaluator.evaluate(network, [1]))
    rate = rollouts.env_steps / seconds
    rows.append(["synevo, 256 balancing MLPs", rate, f"{rate / reference:.2f}", _split(rollouts)])
    rows[-1].append(load())

    model = model_for("CartPole-v1", "synaptogen")
    genomes = population(model, 256)
    evaluate_population(model, genomes, evaluator, [0])
    seconds, (_, rollouts) = cpu_seconds(
        lambda: evaluate_population(model, genomes, evaluator, [1])
    )
    rate = rollouts.env_steps / seconds
    rows.append(
        ["synevo, 256 random SynaptoGen", rate, f"{rate / reference:.2f}", _split(rollouts)]
    )
    rows[-1].append(load())
    return rows


def per_env_rows(quick: bool, workers: int) -> list[list[object]]:
    """[task, raw rate, synevo in-process, ratio, synevo with workers, ratio, load]."""
    rows = []
    tasks = PER_ENV_TASKS[:2] if quick else PER_ENV_TASKS
    for env_id in tasks:
        note = load()
        raw = single_random_rate(env_id, 5000 if quick else 20000)
        model = model_for(env_id, "synaptogen")
        genomes = population(model, 64)
        local = _wall_rate(model, genomes, env_id, 0)
        row = [env_id, raw, local, f"{local / raw:.2f}"]
        if workers:
            remote = _wall_rate(model, genomes, env_id, workers)
            row += [remote, f"{remote / raw:.2f}"]
        else:
            row += ["n/m", "n/m"]
        rows.append(row + [note])
    return rows


def run(quick: bool, workers: int) -> list[str]:
    """The two target tables."""
    set_threads(1)  # torch and numpy BLAS
    cart = table(
        "CartPole-v1 at popsize 256, 1 core: env steps per CPU second (useful steps only)",
        ["what", "env steps/s", "x vector env", "time split", "load"],
        cartpole_rows(quick),
    )
    per_env = table(
        "One environment per episode, 64 SynaptoGen networks: env steps per wall second",
        ["task", "random actions", "synevo", "ratio", f"synevo {workers} workers", "ratio", "load"],
        per_env_rows(quick, workers),
    )
    return [cart, per_env]


def _wall_rate(model, genomes: torch.Tensor, env_id: str, workers: int) -> float:
    """Env steps per wall second of one evaluation after a warm-up one."""
    from synevo.distributed import make_evaluator

    evaluator = make_evaluator(env_id, workers)
    try:
        evaluate_population(model, genomes, evaluator, [0])
        start = time.perf_counter()
        _, rollouts = evaluate_population(model, genomes, evaluator, [1])
        return rollouts.env_steps / (time.perf_counter() - start)
    finally:
        evaluator.close()


def _split(rollouts) -> str:
    seconds = rollouts.seconds
    total = seconds["total"]
    return f"forward {seconds['forward'] / total:.0%}, env {seconds['env'] / total:.0%}"
