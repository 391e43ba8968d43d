"""A featurizer, in one file: a learned rotation followed by a learned per-coordinate scale
(invertible and linear, but not orthogonal): ``z = h W diag(exp(s))``."""

import torch
from torch import nn

from numsym_pl.das.featurizers import Featurizer, Rotation


class ScaledRotation(Featurizer):
    """Args: width (the state's d), seed (the initial rotation's)."""

    name = "scaled_rotation"

    def __init__(self, width: int, seed: int = 0):
        super().__init__()
        self.turn, self.log_scale = Rotation(width, seed), nn.Parameter(torch.zeros(width))

    def encode(self, h):
        return self.turn.encode(h) * self.log_scale.exp()

    def decode(self, z):
        return self.turn.decode(z * (-self.log_scale).exp())
