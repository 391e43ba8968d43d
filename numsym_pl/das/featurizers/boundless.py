"""Boundless DAS (Wu et al., 2023): a learned rotation whose swapped width is learned too.

The swap mixes the source's features into the target's through a soft mask over the rotated
coordinates, ``m_i = sigmoid((w - i - 1/2) / T)``. The width ``w = 1 + (d - 1) sigmoid(theta)`` is
learned (started at the alignment's ``subspace``, trained at its own learning rate
``boundary_lr``, as pyvene's tutorial trains its boundaries), the temperature ``T`` anneals
geometrically from ``temperature[0]`` to ``temperature[1]`` over the first ``anneal_fraction`` of the
step budget, and a size penalty ``size_penalty * w / d`` is added to the loss, so that the width
shrinks to what the variable needs. A width is only learned over a whole schedule, so the fit
runs its full ``max_steps`` (no early stop). Held-out pairs are scored with the hard mask (the
first ``round(w)`` coordinates), and the result reports that learned width (``fit.featurizer.width``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from numsym_pl.das.featurizers.rotation import Rotation
from numsym_pl.errors import ConfigError


class Boundless(Rotation):
    """Args:
        width: the state's width d.
        subspace: the initial width (given by the swap: the alignment's ``subspace``).
        seed: seed of the initial rotation.
        orthogonal_map: as ``rotation``.
        temperature: (start, end) of the mask's temperature, in coordinates.
        anneal_fraction: the fraction of ``max_steps`` the temperature anneals over.
        size_penalty: weight of the learned width (as a fraction of d) in the loss.
        boundary_lr: Adam learning rate of the width's parameter.
    """

    name = "boundless"
    learns_width = True

    def __init__(self, width: int, subspace: int, seed: int = 0,
                 orthogonal_map: Literal["matrix_exp", "cayley"] = "matrix_exp",
                 temperature: tuple[float, float] = (0.5, 0.1), anneal_fraction: float = 1.0, size_penalty: float = 0.3,
                 boundary_lr: float = 0.05):
        super().__init__(width, seed, orthogonal_map)
        start, end = map(float, temperature)
        if not 0 < end <= start:
            raise ConfigError(f"boundless: temperature must be (start, end) with start >= end > 0, got {temperature}")
        if not 0 < anneal_fraction <= 1:
            raise ConfigError(f"boundless: anneal_fraction must be in (0, 1], got {anneal_fraction}")
        if width < 2:
            raise ConfigError(f"boundless: needs a state of width >= 2 to learn a width in, got {width}")
        self.temperature, self.anneal_fraction, self.size_penalty = (start, end), anneal_fraction, size_penalty
        self.boundary_lr = boundary_lr
        start_at = min(max((subspace - 1) / (width - 1), 1e-3), 1 - 1e-3)
        self.boundary = nn.Parameter(torch.logit(torch.tensor(start_at)))
        self.register_buffer("current_temperature", torch.tensor(start))

    @property
    def width(self) -> torch.Tensor:
        """The soft width w, in coordinates (1 to d)."""
        return 1 + (self.in_features - 1) * torch.sigmoid(self.boundary)

    @property
    def learned_width(self) -> int:
        """The hard width held-out pairs are scored with."""
        return int(min(max(round(self.width.item()), 1), self.in_features))

    def mask(self, swapped: int) -> torch.Tensor:
        index = torch.arange(self.in_features, device=self.boundary.device, dtype=torch.float32)
        if self.training and torch.is_grad_enabled():
            return torch.sigmoid((self.width - index - 0.5) / self.current_temperature)
        return (index < self.learned_width).float()

    def penalty(self):
        return self.size_penalty * self.width / self.in_features

    def param_groups(self, lr: float) -> list[dict]:
        rest = [p for n, p in self.named_parameters() if n != "boundary"]
        return [{"params": rest, "lr": lr}, {"params": [self.boundary], "lr": self.boundary_lr}]

    def anneal(self, step: int, max_steps: int) -> bool:
        span = max(1, int(self.anneal_fraction * max_steps))
        start, end = self.temperature
        self.current_temperature.fill_(start * (end / start) ** min(step / span, 1.0))
        return True

    def report(self) -> dict:
        return {"width": self.learned_width, "soft_width": self.width.item(),
                "temperature": float(self.current_temperature)}
