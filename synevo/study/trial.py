"""One trial of a study (model x optimizer x task x seed): its specification and outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from synevo.optimizers.base import Metrics


@dataclass(frozen=True)
class TrialSpec:
    """Everything needed to run one trial, picklable so it can run as a Ray task.

    Args:
        task: gymnasium environment id.
        model: model registry name, e.g. `"synaptogen"`.
        model_settings: keyword settings of the model (genes, hidden, ...).
        optimizer: optimizer registry name, e.g. `"dqn"` or `"snes"`.
        optimizer_settings: keyword settings of the optimizer.
        label: a short, unique name of the (model, optimizer) variant, e.g. `"snes"`.
        seed: the trial seed.
        budget: training environment steps.
        eval_every, eval_episodes: checkpoint evaluation during training.
        final_episodes: greedy seeded episodes of the final evaluation of the best genome.
        agents: networks sampled from the best genome and scored each (0: none).
        agent_episodes: greedy seeded episodes of each scored agent.
        free_assembly: free-assembly networks of the best genome, scored the same way.
    """

    task: str
    model: str
    model_settings: dict[str, Any]
    optimizer: str
    optimizer_settings: dict[str, Any]
    label: str
    seed: int
    budget: int
    eval_every: int = 10_000
    eval_episodes: int = 20
    final_episodes: int = 100
    agents: int = 0
    agent_episodes: int = 10
    free_assembly: int = 0

    @property
    def name(self) -> str:
        """A run name: `task/label/seed`."""
        return f"{self.task}/{self.label}/seed{self.seed}"

    def params(self) -> dict[str, Any]:
        """The whole trial config, flattened with dotted keys, for MLflow params."""
        flat: dict[str, Any] = {
            "task": self.task,
            "model": self.model,
            "optimizer": self.optimizer,
            "label": self.label,
            "seed": self.seed,
            "budget": self.budget,
            "eval_every": self.eval_every,
            "eval_episodes": self.eval_episodes,
            "final_episodes": self.final_episodes,
            "agents": self.agents,
            "agent_episodes": self.agent_episodes,
            "free_assembly": self.free_assembly,
        }
        flat.update({f"model.{k}": v for k, v in self.model_settings.items()})
        flat.update({f"optimizer.{k}": v for k, v in self.optimizer_settings.items()})
        return flat


@dataclass
class TrialOutcome:
    """What a finished trial hands back to the driver.

    `final_returns` holds the return of each of the `final_episodes` greedy seeded episodes
    of the best genome, shape `(final_episodes,)`. `agent_scores` holds, by kind
    (`"sampled"`, `"free_assembly"`, only those computed), every agent's mean return over
    `agent_episodes` episodes, shape `(agents,)` or `(free_assembly,)`.
    """

    spec: TrialSpec
    family: str
    best_genome: torch.Tensor
    final_returns: list[float]
    env_steps: int
    eval_env_steps: int
    wall_time: float
    history: list[Metrics] = field(default_factory=list)
    model_info: dict[str, Any] = field(default_factory=dict)
    gym_threshold: float | None = None
    paper_threshold: float | None = None
    agent_scores: dict[str, list[float]] = field(default_factory=dict)

    @property
    def final_return(self) -> float:
        """Mean return of the final evaluation."""
        return float(sum(self.final_returns) / len(self.final_returns))

    def summary(self) -> Metrics:
        """The final metrics logged on the trial's run."""
        out: Metrics = {
            "final/return_mean": self.final_return,
            "final/return_min": float(min(self.final_returns)),
            "final/return_max": float(max(self.final_returns)),
            "final/episodes": float(len(self.final_returns)),
            "final/env_steps": float(self.env_steps),
            "final/eval_env_steps": float(self.eval_env_steps),
            "final/wall_time_s": self.wall_time,
        }
        if self.gym_threshold is not None:
            out["final/solved_gym"] = float(self.final_return >= self.gym_threshold)
        if self.paper_threshold is not None:
            out["final/solved_paper"] = float(self.final_return >= self.paper_threshold)
        return out

    def agent_metrics(self) -> Metrics:
        """`agents/<kind>_{mean,iqm,count,solved_gym,solved_paper}` for every scored kind.

        `solved_*` is the fraction of agents whose score reaches the threshold; it is left
        out when the task has no such threshold.
        """
        from scipy import stats

        out: Metrics = {}
        for kind, scores in self.agent_scores.items():
            values = np.asarray(scores, dtype=np.float64)
            out[f"agents/{kind}_mean"] = float(values.mean())
            out[f"agents/{kind}_iqm"] = float(stats.trim_mean(values, 0.25))
            out[f"agents/{kind}_count"] = float(len(values))
            if self.gym_threshold is not None:
                out[f"agents/{kind}_solved_gym"] = float((values >= self.gym_threshold).mean())
            if self.paper_threshold is not None:
                solved = (values >= self.paper_threshold).mean()
                out[f"agents/{kind}_solved_paper"] = float(solved)
        return out
