"""Reviewers' question 1: does the aligned subspace still carry counts the net never trained on?

The learned rotation is applied, unchanged, to pairs whose *source* carries a training count, a
held-out count (inside the range, never trained) or an OOD count (above the range); targets are
training trials. IIA per set, and per source count, tell how far the variable extends.
"""

from __future__ import annotations

import torch

from numsym_pl.das.alignment import Alignment
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.pairs.counterfactual import make_pairs
from numsym_pl.das.interventions.patched import pair_correct
from numsym_pl.das.pairs.sets import source_states
from numsym_pl.models.interface import SequenceModel
from numsym_pl.seeding import derive
from numsym_pl.tasks import NumericEquivalence

SOURCE_SETS = ("train", "heldout", "ood")


def by_group(correct: torch.Tensor, groups: torch.Tensor) -> dict[int, float]:
    return {int(g): float(correct[groups == g].float().mean()) for g in torch.unique(groups)}


def ood_interventions(net: SequenceModel, task: NumericEquivalence, alignment: Alignment, swap: SubspaceSwap,
                      n: int = 1000, seed: int = 0) -> dict:
    """{"iia": {source set: IIA}, "iia_by_value": {"trained" | "heldout" | "above_range": IIA over the
    pairs whose carried value is such}, "per_value": {value: IIA}, "n": pairs per set}. The carried
    value is the source's variable at ``i_s`` (a count of 25 trials carries 0..25)."""
    program = alignment.program_object()
    iia, correct_all, values_all = {}, [], []
    for which in SOURCE_SETS:
        if which != "train" and not getattr(task, f"{which}_counts"):
            continue
        pairs = make_pairs(task, program, alignment.variables, n, seed=derive(seed, "ood_interventions", which),
                           source_split=which)
        correct = pair_correct(net, swap, alignment.site, pairs, source_states(net, pairs, alignment.site))
        iia[which] = float(correct.float().mean())
        correct_all.append(correct)
        values_all.append(pairs.source_value)
    correct, values = torch.cat(correct_all), torch.cat(values_all)
    kinds = {"trained": torch.isin(values, torch.as_tensor(task.train_counts)) | (values == 0),
             "heldout": torch.isin(values, torch.as_tensor(task.heldout_counts, dtype=values.dtype)),
             "above_range": values > task.max_count}
    by_value = {k: float(correct[m].float().mean()) for k, m in kinds.items() if m.any()}
    return {"iia": iia, "iia_by_value": by_value, "per_value": by_group(correct, values), "n": n}
