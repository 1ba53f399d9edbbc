"""Helpers shared by the benchmark sections: populations, load notes, tables."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import torch

from synevo.evaluation import check_task
from synevo.models import build_model
from synevo.models.base import GenomeModel

NETWORKS = ("synaptogen", "mlp")


def load() -> str:
    """The 1-minute load average now, e.g. `"load 1.23"`."""
    return f"load {os.getloadavg()[0]:.2f}"


def model_for(env_id: str, network: str) -> GenomeModel:
    """SynaptoGen G = 16 or the plain MLP, hidden 128, sized for the task."""
    task = check_task(env_id)
    extra = {"genes": 16} if network == "synaptogen" else {}
    return build_model(network, task.obs_dim, task.n_actions, hidden=[128], **extra)


def population(model: GenomeModel, popsize: int, seed: int = 0) -> torch.Tensor:
    """`(popsize, D)` genomes from the model's own initialization."""
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([model.init_genome(generator) for _ in range(popsize)])


def cpu_seconds(call: Callable[[], object]) -> tuple[float, object]:
    """CPU seconds of this process spent in `call()`, and its result."""
    start = time.process_time()
    result = call()
    return time.process_time() - start, result


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, right-aligned columns, with a title line."""
    cells = [[str(c) for c in header]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [title]
    for k, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
