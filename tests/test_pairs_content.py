"""Pairs a reviewer would sign: held-out pairs that repeat no training pair in what an interchange
sees, the changed-token mask of Same-Object phase pairs, and Up-Up's E after an overshoot."""

import numpy as np
import pytest

from numsym_pl.das import Alignment, SearchSettings
from numsym_pl.das.interventions import Interchange
from numsym_pl.das.pairs.counterfactual import make_pairs
from numsym_pl.das.pairs.sets import PairSets
from numsym_pl.programs import DEMO, PROGRAMS, TokenKinds
from numsym_pl.tasks import NumericEquivalence
from tests.conftest import SMALL_NETS


def _seen(pairs) -> list[tuple]:
    """What an interchange sees of each pair, re-derived from its tensors: the source prefix up to
    i_s, i_t, the counterfactual and which of its targets are scored, and the intervened variables."""
    out = []
    for b in range(len(pairs)):
        i_s, i_t = int(pairs.source_pos[b]), int(pairs.target_pos[b])
        cf = pairs.cf[b].tolist()
        while cf and cf[-1] == 0:
            cf.pop()
        out.append((tuple(pairs.source[b, : i_s + 1].tolist()), i_t, tuple(cf),
                    tuple(np.flatnonzero(pairs.loss_mask[b].numpy()).tolist()), tuple(pairs.blocks[b].tolist())))
    return out


@pytest.mark.parametrize("variant", ["single", "same"])
def test_no_held_out_pair_repeats_a_training_pair_in_what_the_interchange_sees(variant):
    settings = SearchSettings(n_train=3000, n_val=400, n_test=400, progress=False)
    alignment = Alignment("up_down", ["count", "phase"], "state", Interchange(4))
    pairs = PairSets.make(NumericEquivalence(variant), alignment, settings, "cpu")
    train, val = set(_seen(pairs["train"])), set(_seen(pairs["val"]))
    assert not val & train
    for name in ("test", "test.count", "test.phase"):
        assert not set(_seen(pairs[name])) & (train | val), name
    assert pairs["train"].removed is None
    removed = {name: p.removed for name, p in pairs.items() if p.removed is not None}
    assert set(removed) == {"val", "test", "test.count", "test.phase"}
    assert all(0.05 < share < 0.9 for share in removed.values()), removed


def test_independent_draws_repeat_training_pairs_in_content_on_single_object():
    """Why the exclusion is by content: on Single-Object a large share of independently drawn pairs
    equals a training pair in everything the interchange sees; on Multi-Object hardly any."""
    prog = PROGRAMS["up_down"]
    shares = {}
    for variant in ("single", "multi"):
        task = NumericEquivalence(variant)
        train = set(_seen(make_pairs(task, prog, ["count"], 5000, seed=1, floor=False)))
        shares[variant] = np.mean([s in train for s in _seen(make_pairs(task, prog, ["count"], 500, seed=2))])
    assert shares["single"] > 0.2 > 0.05 > shares["multi"]


def test_the_share_removed_is_reported_by_the_pair_sets():
    settings = SearchSettings(n_train=3000, n_val=300, n_test=300, progress=False)
    alignment = Alignment("up_down", "count", "state", Interchange(4))
    sets = PairSets(SMALL_NETS["gru"](), NumericEquivalence("single"), alignment, settings, "cpu")
    assert set(sets.removed) == {"val", "test"} and sets.removed["test"] > 0.2


def test_a_demo_token_agrees_with_the_programs_some_demo_token_on_same_object():
    """Same-Object answers with D0, a demo token: where a phase intervention makes the continuation
    respond while the unintervened program (still in the demo phase) predicts "some demo token",
    the token agrees, and is not a changed target."""
    task, prog = NumericEquivalence("same"), PROGRAMS["up_down"]
    kinds = TokenKinds.of(task)
    p = make_pairs(task, prog, ["count", "phase"], 1000, seed=0)
    cf, mask, changed = p.cf.numpy(), p.loss_mask.numpy(), p.changed.numpy()
    _, unintervened = prog.trace(cf, kinds, {"count": p.target_quantity.numpy()})
    pred, token = unintervened[:, :-1], cf[:, 1:]
    demo_agrees = mask & (pred == DEMO) & np.isin(token, kinds.demo)
    assert demo_agrees.sum() > 100 and demo_agrees.any(1).sum() > 50
    assert not changed[demo_agrees].any()
    assert (changed == (mask & (pred != token) & ~demo_agrees)).all()
    assert changed.any()


def test_up_up_does_not_score_the_E_it_emits_past_its_demo_count():
    task, prog = NumericEquivalence("multi"), PROGRAMS["up_up"]
    kinds = TokenKinds.of(task)
    every = make_pairs(task, prog, ["demo_count"], 1000, seed=4, keep_unscored=True)
    i_t, cf = every.target_pos.numpy(), every.cf.numpy()
    rows = np.arange(len(every))
    state, _ = prog.trace(cf, kinds, {"count": every.target_quantity.numpy()})
    overshot = (state["phase"][rows, i_t] == 1) & (state["resp_count"][rows, i_t] > every.source_value.numpy())
    assert 0.05 < overshot.mean() < 0.4
    # such a pair continues with E alone, which is not scored; every other pair is
    assert (cf[rows, i_t + 1][overshot] == kinds.eos).all()
    assert not every.loss_mask.numpy()[overshot].any() and every.loss_mask.numpy()[~overshot].any(1).all()
    kept = make_pairs(task, prog, ["demo_count"], 1000, seed=4)
    assert len(kept) == 1000 and kept.loss_mask.any(1).all()
    eos_scored = (kept.cf[:, 1:] == kinds.eos) & kept.loss_mask
    assert (eos_scored.sum(1) == 1).all()  # each ends with its scored E at equality
