"""Interchange-intervention accuracy as a torchmetrics Metric (syncs across DDP ranks)."""

from __future__ import annotations

import torch
from torchmetrics import Metric


def exact_rows(logits: torch.Tensor, cf: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """[B] bool: every scored target ``cf[:, 1:][loss_mask]`` of the row is the argmax of ``logits``
    [B, Lc-1, V] (the whole-sequence unit of IIA)."""
    return ((logits.argmax(-1) == cf[:, 1:]) | ~loss_mask).all(1)


class IIA(Metric):
    """Fraction of pairs whose every scored counterfactual token is predicted exactly (whole
    sequence, not per token), overall and per group (e.g. the count carried by the source).

    Args:
        n_groups: groups 0..n_groups-1 tallied separately; values outside are clipped into range.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, n_groups: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.n_groups = n_groups
        self.add_state("correct", torch.zeros(n_groups, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros(n_groups, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, ok: torch.Tensor, groups: torch.Tensor | None = None) -> None:
        """Tally scored pairs: ``ok`` [B] bool, from ``exact_rows(logits, cf, loss_mask)``;
        ``groups`` [B] optional (e.g. the value the source carries)."""
        g = torch.zeros_like(ok, dtype=torch.long) if groups is None else groups.long().clamp(0, self.n_groups - 1)
        self.correct += torch.bincount(g[ok], minlength=self.n_groups)
        self.total += torch.bincount(g, minlength=self.n_groups)

    def compute(self) -> torch.Tensor:
        return self.correct.sum().float() / self.total.sum().clamp(min=1)

    def per_group(self) -> dict[int, float]:
        """{group: IIA} for the groups seen, from this process's tallies."""
        return {int(g): float(self.correct[g]) / int(self.total[g]) for g in torch.nonzero(self.total).flatten()}


def wilson_interval(rate: float | None, n: int | None, z: float = 1.96) -> tuple[float, float] | None:
    """The 95 % Wilson score interval of a proportion ``rate`` measured on ``n`` pairs (None when
    there is nothing to bound). Unlike the normal approximation it stays inside [0, 1] and is not
    empty at IIA 0 or 1, where DAS results often sit."""
    if rate is None or not n or rate != rate:
        return None
    k = round(rate * n)
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * ((p * (1 - p) / n + z2 / (4 * n * n)) ** 0.5) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)
