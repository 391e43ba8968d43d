"""An invertible non-linear featurizer, offered as a control: a learned rotation followed by
additive coupling layers (RevNet / NICE), ``z = C_L(... C_1(h W))``.

Each coupling adds a small MLP of one half of the coordinates to the other half (alternating
halves), so it is exactly invertible (``decode`` subtracts in reverse order). The MLPs' last layers
start at zero: the featurizer starts as the random rotation ``rotation`` starts at.

A non-linear featurizer this expressive can align a variable on a network that never learned it
(Sutter et al., NeurIPS 2025), so its ``control`` flag makes every alignment with it also fit the
same featurizer on an untrained net of the same architecture; the ``das`` table and the report
show the two side by side.
"""

from __future__ import annotations

import torch
from torch import nn

from numsym_pl.das.featurizers.base import Featurizer
from numsym_pl.das.featurizers.rotation import Rotation
from numsym_pl.errors import ConfigError


class RevNet(Featurizer):
    """Args:
        width: the state's width d (at least 2).
        seed: seed of the initial rotation and of the couplings' first layers.
        hidden: hidden width of each coupling's MLP (default d).
        layers: coupling layers.
    """

    name, control = "revnet", True

    def __init__(self, width: int, seed: int = 0, hidden: int | None = None, layers: int = 2):
        super().__init__()
        if width < 2 or layers < 1:
            raise ConfigError(f"revnet: needs a width >= 2 and layers >= 1, got width {width}, layers {layers}")
        self.turn = Rotation(width, seed)
        self.half, hidden = width // 2, hidden or width
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.couplings = nn.ModuleList()
            for i in range(layers):
                n_in, n_out = (width - self.half, self.half) if i % 2 == 0 else (self.half, width - self.half)
                mlp = nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, n_out))
                nn.init.zeros_(mlp[2].weight)
                nn.init.zeros_(mlp[2].bias)
                self.couplings.append(mlp)

    def start_at(self, axes: torch.Tensor) -> bool:
        return self.turn.start_at(axes)  # the couplings start at zero: the featurizer starts as its rotation

    def _halves(self, u):
        return u[..., : self.half], u[..., self.half:]

    def encode(self, h):
        a, b = self._halves(self.turn.encode(h))
        for i, f in enumerate(self.couplings):
            if i % 2 == 0:
                a = a + f(b)
            else:
                b = b + f(a)
        return torch.cat([a, b], -1)

    def decode(self, z):
        a, b = self._halves(z)
        for i in reversed(range(len(self.couplings))):
            if i % 2 == 0:
                a = a - self.couplings[i](b)
            else:
                b = b - self.couplings[i](a)
        return self.turn.decode(torch.cat([a, b], -1))
