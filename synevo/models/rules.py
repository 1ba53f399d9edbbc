"""Gene-pair bond probabilities `P` of SynaptoGen (arXiv 2402.07242), learned or bio-plausible.

Learned rules: `P = sigmoid(O / tau)`. Bio-plausible rules (39 C. elegans cell-adhesion genes,
47 rules in `data/bio_rules.toml`): `P = 0.5 sigmoid((O - a) / tau) + c`, with `a = -3/G`,
`c = 0.5` where the mask holds (P in [0.5, 1]) and `a = 3/G`, `c = 0` elsewhere (P in [0, 0.5]).
"""

from __future__ import annotations

import tomllib
from importlib import resources

import torch


def load_bio_mask() -> tuple[list[str], torch.Tensor]:
    """The 39 genes and the rule mask `(39, 39)`, row = pre-synaptic gene, column = post.

    Raises:
        ValueError: if the package data names a gene outside its gene list.
    """
    text = resources.files("synevo.models").joinpath("data/bio_rules.toml").read_text()
    data = tomllib.loads(text)
    genes: list[str] = list(data["genes"])
    index = {gene: i for i, gene in enumerate(genes)}
    mask = torch.zeros(len(genes), len(genes), dtype=torch.bool)
    for pre, posts in data["rules"].items():
        unknown = [g for g in [pre, *posts] if g not in index]
        if unknown:
            raise ValueError(f"bio_rules.toml names genes {unknown} missing from its gene list")
        mask[index[pre], [index[g] for g in posts]] = True
    return genes, mask


def learned_probabilities(rules: torch.Tensor, tau: float) -> torch.Tensor:
    """`P = sigmoid(O / tau)`: rules `(..., G, G)` -> probabilities of the same shape."""
    return torch.sigmoid(rules / tau)


def bio_probabilities(rules: torch.Tensor, tau: float, mask: torch.Tensor) -> torch.Tensor:
    """Squashed probabilities: in [0.5, 1] where `mask (G, G)` holds, in [0, 0.5] elsewhere.

    rules `(..., G, G)` -> probabilities of the same shape.
    """
    shift = 3.0 / mask.shape[0]
    a = torch.where(mask, -shift, shift).to(rules.dtype)
    c = torch.where(mask, 0.5, 0.0).to(rules.dtype)
    return 0.5 * torch.sigmoid((rules - a) / tau) + c
