"""``pca_rotation``: ``rotation`` started at the principal axes of the site's states."""

from __future__ import annotations

import torch

from numsym_pl.das.featurizers.rotation import Rotation


class PCARotation(Rotation):
    """``rotation`` started at the principal axes of the site's states on the training sources
    (the first column the direction of largest variance), so that a small subspace starts where
    the states vary most."""

    name = "pca_rotation"

    @torch.no_grad()
    def prepare(self, states: torch.Tensor) -> None:
        x = states.float() - states.float().mean(0)
        _, vectors = torch.linalg.eigh(x.T @ x / max(len(x) - 1, 1))  # ascending eigenvalues
        self.weight = vectors.flip(1).to(self.weight.dtype)
