"""Peak resident memory of one generation at popsize 1024, measured in a fresh subprocess.

The child imports synevo, builds the model and the population (its RSS then is the
baseline: mostly torch and gymnasium), evaluates one generation, and reports its peak RSS
before and after (Linux's `VmHWM`; `getrusage`'s `ru_maxrss` would carry over the peak of
the benchmark process that forked the child).
"""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.common import load, table

CHILD = """
import json, torch
from synevo.threads import set_threads
set_threads(1)  # torch and numpy BLAS
from benchmarks.common import model_for, population
from synevo.evaluation import Evaluator, evaluate_population
env_id, network, popsize, samples = {args!r}
model = model_for(env_id, network)
if samples:
    model.sampler = "fast"
genomes = population(model, popsize)
evaluator = Evaluator(env_id)
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
before = peak()
generator = torch.Generator().manual_seed(0)
_, rollouts = evaluate_population(model, genomes, evaluator, [0], samples, generator)
print(json.dumps([before, peak(), rollouts.env_steps]))
"""

CASES = (
    ("CartPole-v1", "synaptogen", 1024, 0),
    ("CartPole-v1", "synaptogen", 1024, 1),
    ("LunarLander-v3", "synaptogen", 1024, 0),
)


def peak_rss(env_id: str, network: str, popsize: int, samples: int) -> tuple[float, float, int]:
    """(baseline MiB, peak MiB, env steps) of one generation in a child process."""
    code = CHILD.format(args=(env_id, network, popsize, samples))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=900
    )
    before, after, steps = json.loads(done.stdout.strip().splitlines()[-1])
    return before, after, steps


def run(quick: bool) -> list[str]:
    """The memory table."""
    rows = []
    for env_id, network, popsize, samples in CASES[:2] if quick else CASES:
        note = load()
        before, after, steps = peak_rss(env_id, network, popsize, samples)
        what = "expected" if not samples else "sampled, fast"
        rows.append([env_id, popsize, what, before, after, after - before, steps, note])
    header = ["task", "popsize", "networks", "set-up MiB", "peak MiB", "added MiB", "env steps"]
    header += ["load"]
    return [table("Peak RSS of one generation (child process, SynaptoGen G=16)", header, rows)]
