"""Distinguishability of two hypotheses: how often their counterfactual labels differ.

Two alignments (program + variables) are scored on the same counterfactual pairs (the same
source and target trials and positions, drawn from one seed). Where their labels agree, a net
that follows either one scores the same, so IIA cannot rank them; the fraction of pairs on which
they differ is what an IIA difference between them can rest on. Below ``INDISTINGUISHABLE`` the
pair is reported as "not distinguishable" instead of ranked.
"""

from __future__ import annotations

import torch

from numsym_pl.das.alignment import Alignment
from numsym_pl.das.iia import wilson_interval
from numsym_pl.das.pairs.counterfactual import make_pairs
from numsym_pl.tasks.base import TaskFamily

#: below this fraction of differing labels two alignments are "not distinguishable"
INDISTINGUISHABLE = 0.2


def _padded(x: torch.Tensor, width: int) -> torch.Tensor:
    return torch.nn.functional.pad(x, (0, width - x.shape[1]))


def distinguishability(task: TaskFamily, first: Alignment, second: Alignment, n: int = 1000, seed: int = 0) -> dict:
    """``{first, second, differ, n, interval, distinguishable}``: the fraction of ``n`` pairs
    (training split) on which the two alignments' labels differ (the continuation or which of
    its tokens are scored, none included), with its 95 % interval."""
    a = make_pairs(task, first.program_object(), first.variables, n, seed=seed, floor=False, keep_unscored=True)
    b = make_pairs(task, second.program_object(), second.variables, n, seed=seed, floor=False, keep_unscored=True)
    # both draw their trials and positions first, from the same seed
    if not all(torch.equal(getattr(a, f), getattr(b, f)) for f in ("source", "source_pos", "target_pos")):
        raise RuntimeError("distinguishability: the two alignments drew different pairs")
    L = max(a.cf.shape[1], b.cf.shape[1])
    differ = ((_padded(a.cf, L) != _padded(b.cf, L)).any(1)
              | (_padded(a.loss_mask, L - 1) != _padded(b.loss_mask, L - 1)).any(1))
    rate = differ.float().mean().item()
    name = lambda x: f"{x.program}.{'+'.join(x.variables)}"
    return {"first": name(first), "second": name(second), "differ": rate, "n": n,
            "interval": list(wilson_interval(rate, n)), "distinguishable": rate >= INDISTINGUISHABLE}


def competing_pairs(task: TaskFamily, alignments: list[Alignment], n: int = 1000, seed: int = 0) -> list[dict]:
    """``distinguishability`` of every two learned (DAS) alignments of different programs (one per program
    and variables: the site does not change a label)."""
    seen, hypotheses = set(), []
    for a in alignments:
        key = (a.program, tuple(a.variables))
        if a.intervention.learned and key not in seen:
            seen.add(key)
            hypotheses.append(a)
    return [distinguishability(task, x, y, n, seed) for i, x in enumerate(hypotheses) for y in hypotheses[i + 1:]
            if x.program != y.program]

