"""``rotation``: the default featurizer, a learned orthogonal ``W`` [d, d] (``z = h W``)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

from numsym_pl.das.featurizers.base import Featurizer, random_orthogonal


TAYLOR_TERMS = 14  # expm_columns' series length: the tail bound below, and the cost Rotation.columns weighs


def expm_columns(A: torch.Tensor, r: int, steps: int, terms: int = TAYLOR_TERMS) -> torch.Tensor:
    """``matrix_exp(A)[:, :r]`` for a skew-symmetric A [d, d] without the d x d exponential:
    ``steps`` times a ``terms``-term Taylor series of ``A / steps``, applied to the first r unit
    vectors (d^2 r work per term). With ``||A / steps||_2 <= 2`` the series' tail is below 3e-8 of
    the result, float32's own rounding; autograd differentiates the series."""
    d = A.shape[0]
    out = torch.eye(d, r, dtype=A.dtype, device=A.device)
    A = A / steps
    for _ in range(steps):
        term = out
        for j in range(1, terms + 1):
            term = (A @ term) / j
            out = out + term
    return out


class Rotation(Featurizer, nn.Linear):
    """A learned rotation: ``z = h W`` with ``W`` orthogonal, started at a random orthogonal matrix.

    Args:
        width: the state's width d.
        seed: seed of the initial rotation.
        orthogonal_map: ``matrix_exp`` (PyTorch's default, as pyvene) or ``cayley`` (a linear solve).
    """

    name, linear = "rotation", True

    def __init__(self, width: int, seed: int = 0, orthogonal_map: Literal["matrix_exp", "cayley"] = "matrix_exp"):
        with torch.random.fork_rng(devices=[]):  # nn.Linear's own init draws from the global RNG: leave it alone
            nn.Linear.__init__(self, width, width, bias=False)
        self.orthogonal_map = orthogonal_map
        orthogonal(self, orthogonal_map=orthogonal_map)
        with torch.no_grad():
            self.weight = random_orthogonal(width, seed)

    def encode(self, h):
        return h @ self.weight

    @torch.no_grad()
    def start_at(self, axes: torch.Tensor) -> bool:
        self.weight = axes.to(self.weight.dtype)
        return True

    def decode(self, z):
        return z @ self.weight.T

    def columns(self, r: int) -> torch.Tensor:
        """``weight[:, :r]``, all a linear swap of r coordinates uses. Under ``matrix_exp`` with few
        columns it is ``base @ expm_columns(A, r)`` (A: the skew-symmetric matrix the parametrization
        exponentiates): the same to float precision, in d^2 r work instead of the d x d exponential
        and its backward (on a 512-wide MLP site, most of a DAS step's time)."""
        if self.orthogonal_map == "matrix_exp" and r < self.in_features:
            p = self.parametrizations.weight
            X = p.original.tril()
            A = X - X.T
            with torch.no_grad():  # ||A||_2 <= ||A||_F: each step's A / steps has a spectral norm <= 2
                steps = max(1, math.ceil(float(A.norm()) / 2))
            if TAYLOR_TERMS * steps * r < 10 * self.in_features:  # else the d x d exponential costs less
                return p[0].base @ expm_columns(A, r, steps)
        return super().columns(r)
