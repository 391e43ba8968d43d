"""``run_alignment``: test one alignment on a frozen copy of a net, by its intervention."""

from __future__ import annotations

import copy
from dataclasses import replace

from numsym_pl.das.alignment import Alignment
from numsym_pl.das.record import AlignmentResult
from numsym_pl.das.settings import SearchSettings
from numsym_pl.models.interface import SequenceModel
from numsym_pl.seeding import derive
from numsym_pl.tasks.base import TaskFamily


def check_alignment(net: SequenceModel, alignment: Alignment) -> None:
    """Fail now, by name, if ``alignment`` cannot run on ``net`` (before any training or fitting)."""
    alignment = alignment.for_net(net)
    alignment.intervention.check(net, alignment)


def replicate_seed(seed: int, replicate: int) -> int:
    """The seed of DAS seed number ``replicate`` of an alignment fitted from ``seed`` (the first is
    ``seed`` itself)."""
    return seed if replicate == 0 else derive(seed, "das_seed", replicate)


def run_alignment(net: SequenceModel, task: TaskFamily, alignment: Alignment, settings: SearchSettings | None = None,
                  init_rotation: dict | None = None) -> tuple[AlignmentResult, object]:
    """Score ``alignment`` on a frozen copy of ``net`` through its intervention: (the result, the
    learned module, e.g. the DAS rotation, or None). ``init_rotation`` (a state_dict of that
    module) warm-starts a learned intervention. With ``settings.seeds`` > 1 the alignment is fitted
    once per DAS seed (``replicate_seed``): the result and module are the first seed's, and
    ``result.replicates`` holds every seed's figures."""
    settings = settings or SearchSettings()
    alignment = alignment.for_net(net)
    frozen = copy.deepcopy(net).eval().requires_grad_(False)
    alignment.intervention.check(frozen, alignment)
    result, learned = alignment.intervention.run(frozen, task, alignment, replace(settings, seeds=1), init_rotation)
    if settings.seeds > 1:
        replicates = [result.replicate(settings.seed)]
        for i in range(1, settings.seeds):
            seed = replicate_seed(settings.seed, i)
            # a replicate keeps its IIA, floor and fit (``replicate``): the baselines and drift are the first seed's
            again, _ = alignment.intervention.run(frozen, task, alignment,
                                                  replace(settings, seed=seed, seeds=1, baselines=False, drift=False),
                                                  init_rotation)
            replicates.append(again.replicate(seed))
        result.replicates = replicates
    return result, learned
