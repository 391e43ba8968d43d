"""The fixed maps of the baselines: nothing is learned, and none is registered as a featurizer.

- ``identity``: ``W = I``, so a swap exchanges raw neurons;
- ``random``: a fixed random orthogonal ``W`` drawn from the seed;
- ``full``: the whole state is the swapped block (the swap returns the source's state exactly).
"""

from __future__ import annotations

import torch

from numsym_pl.das.featurizers.base import Featurizer, random_orthogonal


class FixedMap(Featurizer):
    """A fixed orthogonal ``W`` [d, d] (a buffer, not a parameter)."""

    linear, fixed = True, True

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("fixed_weight", weight)

    @property
    def weight(self) -> torch.Tensor:
        return self.fixed_weight

    def encode(self, h):
        return h @ self.weight

    def decode(self, z):
        return z @ self.weight.T


class WholeState(FixedMap):
    """The full-state swap: the swapped block is the whole state, taken from the source as it is."""

    whole_state = True


#: baseline name -> its map for a state of width d (``seed``: the random rotation's)
BASELINE_MAPS = {
    "identity": lambda width, seed: FixedMap(torch.eye(width)),
    "random": lambda width, seed: FixedMap(random_orthogonal(width, seed)),
    "full": lambda width, seed: WholeState(torch.eye(width)),
}
