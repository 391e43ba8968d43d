"""Reviewers' question 1: does the aligned subspace still carry counts outside the training range?

The learned rotation is applied, unchanged, to pairs whose *source* is a training trial, a trial
of a held-out count or one of an OOD count (above the range); targets are training trials. Every
value from 0 to the trial's count passes through the running count of a training trial, so a
held-out count is never a trial's total in training but is a value the count variable takes; only
values above ``max_count`` are new to the variable.

Two things keep the readout apart from the variable:

- only **effective** pairs count (the intervention changes the program's answer; on the others a
  net that ignores the patch scores too);
- a net that cannot answer ``L`` responses cannot answer a patched pair that asks for ``L``: each
  pair's *readout* is the net's own trial accuracy on natural trials of the counterfactual's
  output length ``L``, and the **normalised** IIA of a group of pairs is its IIA over the mean
  readout of the same pairs (near 1: the variable carries the value as well as the net answers
  such trials at all; below 1: the variable is the bottleneck). It is a reference, not a bound:
  a natural trial of ``L`` also has ``L`` demo tokens to count, a patched one fewer, so a
  normalised IIA above 1 says the readout does better than the whole task at that length. Where
  the readout is below ``MIN_READOUT`` the net rarely answers those lengths and no normalised
  figure is given.
"""

from __future__ import annotations

import numpy as np
import torch

from numsym_pl.das.alignment import Alignment
from numsym_pl.das.interventions.patched import pair_correct
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.pairs.counterfactual import make_pairs
from numsym_pl.das.pairs.sets import source_states
from numsym_pl.lit_module import response_correct
from numsym_pl.models.interface import SequenceModel
from numsym_pl.seeding import derive
from numsym_pl.tasks import NumericEquivalence

SOURCE_SETS = ("train", "heldout", "ood")
VALUE_KINDS = ("trained", "heldout", "above_range")
#: the least readout (own accuracy at the pairs' output lengths) a normalised IIA is given for
MIN_READOUT = 0.1
#: natural trials per output length behind the readout readout
OWN_TRIALS = 200


def by_group(correct: torch.Tensor, groups: torch.Tensor) -> dict[int, float]:
    return {int(g): float(correct[groups == g].float().mean()) for g in torch.unique(groups)}


def output_lengths(cf: torch.Tensor, task: NumericEquivalence) -> torch.Tensor:
    """[N] the responses a counterfactual sequence asks for: the tokens between its T and its E."""
    v = task.vocab
    trig = (cf == v.TRIG).int().argmax(1)
    end = (cf == v.EOS).int().argmax(1)
    return end - trig - 1


@torch.no_grad()
def own_accuracy(net: SequenceModel, task: NumericEquivalence, lengths, n: int = OWN_TRIALS,
                 seed: int = 0) -> dict[int, float]:
    """{L: the net's trial accuracy on ``n`` natural trials of count L} (greedy decoding exact)."""
    rng = np.random.default_rng(derive(seed, "own_accuracy"))
    device = next(net.parameters()).device
    out = {}
    for length in sorted({int(x) for x in lengths}):
        trials = task.trials(np.full(n, length), rng)
        tokens, scored = torch.as_tensor(trials.tokens, device=device), torch.as_tensor(trials.scored, device=device)
        ok, _, _ = response_correct(net(tokens[:, :-1]), tokens, scored)
        out[length] = float(ok.float().mean())
    return out


def _summary(correct: torch.Tensor, readout: torch.Tensor) -> dict:
    """IIA, readout and normalised IIA of a group of effective pairs."""
    if len(correct) == 0:
        return {"iia": None, "readout": None, "normalised": None, "n": 0}
    iia, readout = float(correct.float().mean()), float(readout.mean())
    return {"iia": iia, "readout": readout, "normalised": iia / readout if readout >= MIN_READOUT else None,
            "n": int(len(correct))}


def ood_interventions(net: SequenceModel, task: NumericEquivalence, alignment: Alignment, swap: SubspaceSwap,
                      n: int = 1000, seed: int = 0) -> dict:
    """On effective pairs only: {"by_source": {source set: summary}, "by_value": {"trained" |
    "heldout" | "above_range": summary over the pairs whose carried value is such}, "per_value":
    {value: summary}, "own": {output length: the net's own accuracy}, "n": pairs drawn per set,
    "n_effective": {source set: effective pairs}, "max_count": the top of the training range}; a
    summary is {"iia", "readout", "normalised", "n"} (module docstring). The carried value is the
    source's variable at ``i_s`` (a trial of 25 carries 0..25)."""
    program = alignment.program_object()
    correct, values, lengths, n_effective = [], [], [], {}
    for which in SOURCE_SETS:
        if which != "train" and not getattr(task, f"{which}_counts"):
            continue
        pairs = make_pairs(task, program, alignment.variables, n, seed=derive(seed, "ood_interventions", which),
                           source_split=which)
        pairs = pairs[pairs.effective]
        n_effective[which] = len(pairs)
        correct.append(pair_correct(net, swap, alignment.site, pairs, source_states(net, pairs, alignment.site)).cpu())
        values.append(pairs.source_value.cpu())
        lengths.append(output_lengths(pairs.cf, task).cpu())
    sets = [w for w in SOURCE_SETS if w in n_effective]
    correct_all, values_all, lengths_all = torch.cat(correct), torch.cat(values), torch.cat(lengths)
    own = own_accuracy(net, task, lengths_all.tolist(), seed=seed)
    readout = torch.as_tensor([own[int(x)] for x in lengths_all], dtype=torch.float64)
    offsets = np.cumsum([0] + [len(c) for c in correct])
    by_source = {w: _summary(correct[i], readout[offsets[i]: offsets[i + 1]]) for i, w in enumerate(sets)}
    kinds = {"trained": torch.isin(values_all, torch.as_tensor(task.train_counts)) | (values_all == 0),
             "heldout": torch.isin(values_all, torch.as_tensor(task.heldout_counts, dtype=values_all.dtype)),
             "above_range": values_all > task.max_count}
    by_value = {k: _summary(correct_all[m], readout[m]) for k, m in kinds.items() if m.any()}
    per_value = {int(v): _summary(correct_all[values_all == v], readout[values_all == v])
                 for v in torch.unique(values_all)}
    return {"by_source": by_source, "by_value": by_value, "per_value": per_value, "own": own, "n": n,
            "n_effective": n_effective, "max_count": int(task.max_count)}
