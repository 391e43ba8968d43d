"""OOD interventions and phase flips on the planted counter (``tests/test_planted.py``): a count that extends beyond
the training range scores 1 on effective pairs; a net that cannot *say* long answers fails them,
and the readout tells that failure apart from the variable's."""

import numpy as np
import torch

from numsym_pl.analysis.ood_interventions import output_lengths, own_accuracy, ood_interventions
from numsym_pl.das import Alignment
from numsym_pl.das.interventions import Interchange
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.tasks import VOCAB
from tests.test_planted import TASK, PlantedCounter

ALIGNMENT = Alignment("up_down", "count", "state", Interchange(1))
CAP = 11  # the capped net says at most this many responses (the range is 1-10, OOD 12)


class CappedReadout(PlantedCounter):
    """The planted counter, but it ends every answer after ``CAP`` responses: its count variable
    is intact; only its readout stops short."""

    def forward(self, tokens, out_mask=None):
        logits = super().forward(tokens)
        after_trigger = torch.cumsum(tokens == VOCAB.TRIG, 1) > 0
        said = torch.cumsum((tokens == VOCAB.RESP) & after_trigger, 1)
        logits[..., VOCAB.EOS] = torch.where(said >= CAP, 100.0, logits[..., VOCAB.EOS])
        return logits if out_mask is None else logits[out_mask]


def _planted_swap(net):
    swap = SubspaceSwap(net.Q.shape[0], 1)
    swap.rotation.weight = net.Q.clone()  # its first column is the count's direction
    return swap


def test_output_lengths_are_the_counts_of_natural_trials():
    trials = TASK.trials(np.array([0, 3, 12]), np.random.default_rng(0))
    assert output_lengths(torch.as_tensor(trials.tokens), TASK).tolist() == [0, 3, 12]


def test_a_count_beyond_the_range_is_carried_and_only_effective_pairs_are_scored():
    net = PlantedCounter(VOCAB.size)
    out = ood_interventions(net, TASK, ALIGNMENT, _planted_swap(net), n=150)
    assert set(out["by_source"]) == {"train", "heldout", "ood"}
    assert all(0 < out["n_effective"][w] <= 150 for w in out["by_source"])
    assert out["n_effective"]["train"] < 150  # some drawn pairs change nothing and are left out
    assert set(out["by_value"]) == {"trained", "heldout", "above_range"}
    for summary in [*out["by_source"].values(), *out["by_value"].values()]:
        assert summary["iia"] == 1.0 and summary["readout"] == 1.0 and summary["normalised"] == 1.0
    assert max(out["per_value"]) > TASK.max_count


def test_the_readout_separates_a_short_readout_from_the_variable():
    net = CappedReadout(VOCAB.size)
    own = own_accuracy(net, TASK, [5, CAP, CAP + 1, 20])
    assert own == {5: 1.0, CAP: 1.0, CAP + 1: 0.0, 20: 0.0}
    out = ood_interventions(net, TASK, ALIGNMENT, _planted_swap(net), n=150)
    above = out["by_value"]["above_range"]
    assert above["n"] > 0 and above["iia"] < 0.5  # raw IIA says the count does not extend ...
    assert above["readout"] < 0.5  # ... but the net cannot say those answers at all
    short = [s for v, s in out["per_value"].items() if v <= 3]  # values whose answers stay short
    assert short and all(s["iia"] == 1.0 and s["normalised"] == 1.0 for s in short)
    never = [s for s in out["per_value"].values() if s["readout"] == 0.0]
    assert never and all(s["normalised"] is None for s in never)  # no figure where nothing can be said


def test_phase_flips_follow_a_planted_phase_and_the_unpatched_stream_does_not():
    from numsym_pl.analysis.phase_flips import FLIPS, phase_flips

    net = PlantedCounter(VOCAB.size)
    swap = SubspaceSwap(net.Q.shape[0], 1, n_blocks=2)  # block 0 the count (Q's first column), block 1 the phase
    swap.rotation.weight = net.Q.clone()
    out = phase_flips(net, TASK, Alignment("up_down", ["count", "phase"], "state", Interchange(1)), swap, n=60)
    assert all(out["iia"][k] == 1.0 for k in FLIPS)
    assert all(out["unpatched"][k] < 0.1 for k in FLIPS)
