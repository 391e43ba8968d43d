"""``low_rank``: only the swapped columns of a rotation, ``W`` [d, k] with orthonormal columns."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

from numsym_pl.das.featurizers.base import Featurizer, random_orthogonal


class LowRank(Featurizer, nn.Linear):
    """The swapped columns only: ``W`` [d, k] with orthonormal columns (``parametrizations.orthogonal``
    with Householder reflections), started at the first k columns of the random rotation
    ``rotation`` starts at. Its features are the k swapped coordinates, so it has no ``decode``:
    the swap uses ``weight``.

    Args:
        width: the state's width d.
        subspace: k, the coordinates swapped (given by the swap).
        seed: seed of the initial columns.
    """

    name, linear = "low_rank", True

    def __init__(self, width: int, subspace: int, seed: int = 0):
        # the parametrization completes the assigned columns to a square base with torch.randn: seeded here,
        # so that one seed is one start (and the caller's random stream is left alone)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            nn.Linear.__init__(self, subspace, width, bias=False)  # weight [d, k]
            self.seed = seed
            orthogonal(self, orthogonal_map="householder")
            with torch.no_grad():
                self.weight = random_orthogonal(width, seed)[:, :subspace]

    def encode(self, h):
        return h @ self.weight

    @torch.no_grad()
    def start_at(self, axes: torch.Tensor) -> bool:
        with torch.random.fork_rng(devices=[]):  # the completed base, as at construction: from the seed alone
            torch.manual_seed(self.seed)
            self.weight = axes[:, : self.weight.shape[1]].to(self.weight.dtype)
        return True
