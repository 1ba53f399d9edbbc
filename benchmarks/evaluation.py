"""Population evaluation, env steps/s: synevo beside EvoTorch's GymNE and VecGymNE.

All three play the same networks (the same genomes, `benchmarks/policies.py`), greedily,
one episode per member, on one core; figures are useful env steps (of running episodes) per
CPU second of this process, measured after one warm-up evaluation. synevo's figure is
`evaluate_population` (weights from genomes, then the rollouts), the call every study makes.
EvoTorch draws its own reset seeds (its `manual_seed` is not used), so episode lengths agree
in distribution, not one by one. Cuts, to keep a run within minutes:
- GymNE plays members one after the other, so its rate does not depend on popsize; it plays
  the first `GYMNE_MEMBERS` members of each population.
- VecGymNE with SynaptoGen derives every member's weights at every step (its functional
  policy API passes the parameters at each call): measured at popsize 64 only.
- Acrobot-v1 and LunarLander-v3 run one environment object per episode in every framework
  (random policies rarely end an Acrobot episode before its 500 steps): popsize <= 256.
"""

from __future__ import annotations

import logging

from benchmarks.common import NETWORKS, cpu_seconds, load, model_for, population, table
from benchmarks.policies import (
    CachedGenomePolicy,
    FunctionalGenomePolicy,
    mlp_module,
    mlp_parameters,
)
from synevo.evaluation import Evaluator, check_task, evaluate_population
from synevo.threads import set_threads

TASKS = ("CartPole-v1", "Acrobot-v1", "LunarLander-v3")
GYMNE_MEMBERS = 64


def synevo_rate(env_id: str, network: str, popsize: int) -> float:
    """Env steps per CPU second of `evaluate_population`, one episode per member."""
    model = model_for(env_id, network)
    genomes = population(model, popsize)
    evaluator = Evaluator(env_id)
    evaluate_population(model, genomes, evaluator, [0])
    seconds, (_, rollouts) = cpu_seconds(
        lambda: evaluate_population(model, genomes, evaluator, [1])
    )
    evaluator.close()
    return rollouts.env_steps / seconds


def evotorch_rate(env_id: str, network: str, popsize: int, vectorized: bool) -> float | None:
    """Env steps per CPU second of an EvoTorch `GymNE` or `VecGymNE` evaluation."""
    from evotorch.neuroevolution import GymNE, VecGymNE

    if vectorized and network == "synaptogen" and popsize > 64:
        return None
    model = model_for(env_id, network)
    genomes = population(model, popsize if vectorized else min(popsize, GYMNE_MEMBERS))
    if network == "mlp":
        task = check_task(env_id)
        policy, values = mlp_module((task.obs_dim, 128, task.n_actions)), None
        values = mlp_parameters(model, genomes)
    else:
        kind = FunctionalGenomePolicy if vectorized else CachedGenomePolicy
        policy, values = kind(model, genomes[0]), genomes
    problem_class = VecGymNE if vectorized else GymNE
    problem = problem_class(env=env_id, network=policy, num_episodes=1)

    def evaluate() -> None:
        batch = problem.generate_batch(len(values))
        batch.set_values(values)
        problem.evaluate(batch)

    evaluate()
    before = problem.interaction_count
    seconds, _ = cpu_seconds(evaluate)
    return (problem.interaction_count - before) / seconds


def run(quick: bool) -> list[str]:
    """The evaluation table, one row per task, network and popsize."""
    import evotorch  # noqa: F401  (sets up its loggers, which are then quietened)

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("evotorch"):
            logging.getLogger(name).setLevel(logging.WARNING)
    set_threads(1)  # torch and numpy BLAS
    popsizes = (64, 256) if quick else (64, 256, 1024)
    tasks = ("CartPole-v1", "Acrobot-v1") if quick else TASKS
    rows = []
    for env_id in tasks:
        for network in NETWORKS:
            for popsize in popsizes:
                if popsize > 256 and env_id != "CartPole-v1":
                    continue
                note = load()
                ours = synevo_rate(env_id, network, popsize)
                gymne = evotorch_rate(env_id, network, popsize, vectorized=False)
                vec = evotorch_rate(env_id, network, popsize, vectorized=True)
                rows.append(
                    [env_id, network, popsize, ours, gymne, _ratio(ours, gymne), vec]
                    + [_ratio(ours, vec), note]
                )
    header = ["task", "network", "popsize", "synevo", "GymNE", "x GymNE", "VecGymNE"]
    header += ["x VecGymNE", "load"]
    title = "Population evaluation: env steps per CPU second, one episode per member, 1 core"
    return [table(title, header, [[c if c is not None else "n/m" for c in r] for r in rows])]


def _ratio(ours: float, theirs: float | None) -> str:
    return "n/m" if theirs is None else f"{ours / theirs:.1f}x"
