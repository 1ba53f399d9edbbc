"""Comparison models from the genomic-bottleneck literature and SynaptoGen's free-assembly
control (SCIENCE.md sections 1 and 2).

Importing this package registers its models with `synevo.models`, which `build_model` does
on the first name it does not know, so study files can name `"gcm"` and `"gnetwork"`.
"""

from __future__ import annotations

from baselines.free_assembly import assembly_parts, free_assembly, lineage_cells
from baselines.gcm import GCM
from baselines.gnetwork import GNetwork
from synevo.models import register_model

for _cls in (GCM, GNetwork):
    register_model(_cls.name, _cls)

__all__ = ["GCM", "GNetwork", "assembly_parts", "free_assembly", "lineage_cells"]
