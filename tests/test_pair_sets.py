"""Held-out pairs are disjoint from the pairs DAS trains on; every IIA has its interval."""

import numpy as np
import pytest
import torch

from numsym_pl.das.interventions import Interchange
from numsym_pl.das import Alignment, SearchSettings
from numsym_pl.das.iia import wilson_interval
from numsym_pl.das.pairs.counterfactual import make_pairs, pair_keys
from numsym_pl.das.record import AlignmentResult
from numsym_pl.das.pairs.sets import PairSets
from numsym_pl.errors import ConfigError
from numsym_pl.programs import PROGRAMS
from numsym_pl.tasks import NumericEquivalence
from tests.conftest import SMALL_NETS


def test_pair_keys_ignore_trailing_padding_and_what_lies_past_the_source_position_but_see_every_part():
    src, i_s, i_t = np.array([[1, 5, 5, 2]]), np.array([1]), np.array([2])
    cf, mask, blocks = np.array([[1, 5, 6, 6, 2, 0]]), np.array([[0, 0, 1, 1, 0]], bool), np.array([[True, False]])
    k = pair_keys(src, i_s, i_t, cf, mask, blocks)
    assert k == pair_keys(np.pad(src, ((0, 0), (0, 3))), i_s, i_t, cf[:, :5], mask[:, :4], blocks)
    assert k == pair_keys(np.array([[1, 5, 6, 6, 6, 2]]), i_s, i_t, cf, mask, blocks)  # the same prefix up to i_s
    for other in (pair_keys(np.array([[1, 6, 5, 2]]), i_s, i_t, cf, mask, blocks),
                  pair_keys(src, i_s + 1, i_t, cf, mask, blocks), pair_keys(src, i_s, i_t + 1, cf, mask, blocks),
                  pair_keys(src, i_s, i_t, np.array([[1, 5, 6, 2, 0, 0]]), mask, blocks),
                  pair_keys(src, i_s, i_t, cf, np.array([[0, 0, 0, 1, 0]], bool), blocks),
                  pair_keys(src, i_s, i_t, cf, mask, np.array([[False, True]])),
                  pair_keys(src, i_s, i_t, cf, mask, np.array([[True, True]]))):
        assert other != k


@pytest.mark.parametrize("variant", ["single", "same"])
def test_excluded_keys_are_never_drawn_where_independent_draws_repeat_them(variant):
    """On Single- and Same-Object a trial is fixed by its count: independent draws of 1,000 test
    pairs repeat about half of 10,000 training pairs in content; with ``exclude`` none."""
    task, prog = NumericEquivalence(variant), PROGRAMS["up_down"]
    train = make_pairs(task, prog, ["count"], 10_000, seed=1, floor=False)
    independent = make_pairs(task, prog, ["count"], 1000, seed=3)
    disjoint = make_pairs(task, prog, ["count"], 1000, seed=3, exclude=train.key)
    assert np.isin(independent.key.numpy(), train.key.numpy()).mean() > 0.3
    assert not np.isin(disjoint.key.numpy(), train.key.numpy()).any()
    assert len(disjoint) == 1000 and disjoint.loss_mask.any(1).all()
    assert independent.removed is None and 0.3 < disjoint.removed < 0.7


def test_the_pair_sets_of_an_alignment_are_disjoint():
    settings = SearchSettings(n_train=2000, n_val=300, n_test=300, progress=False)
    sets = PairSets(SMALL_NETS["gru"](),
                    NumericEquivalence("single", max_count=10, heldout_counts=(4,), ood_counts=(12,)),
                    Alignment("up_down", ["count", "phase"], "state", Interchange(4)), settings, "cpu")
    keys = {name: set(p.key.tolist()) for name, p in sets.pairs.items()}
    assert not keys["val"] & keys["train"]
    for name in ("test", "test.count", "test.phase"):
        assert not keys[name] & (keys["train"] | keys["val"]), name


def test_a_pair_space_too_small_to_hold_out_is_a_named_error():
    task, prog = (NumericEquivalence("single", min_count=1, max_count=2, heldout_counts=(), ood_counts=()),
                  PROGRAMS["up_down"])
    train = make_pairs(task, prog, ["count"], 500, seed=1, floor=False)
    with pytest.raises(ConfigError, match="fewer than 200 pairs"):
        make_pairs(task, prog, ["count"], 200, seed=2, exclude=train.key)


def test_wilson_interval():
    lo, hi = wilson_interval(0.5, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    lo, hi = wilson_interval(1.0, 1000)
    assert hi == 1.0 and lo == pytest.approx(0.99617, abs=1e-4)
    assert wilson_interval(0.0, 50)[0] == 0.0 < wilson_interval(0.0, 50)[1]
    assert wilson_interval(None, 10) is None and wilson_interval(0.3, 0) is None


def test_a_score_whose_floor_is_within_its_interval_is_not_discriminating():
    ident = Alignment("up_down", "phase", "state", Interchange(4)).identity
    close = AlignmentResult(ident, iia=0.53, n=1000, per_count={}, seconds=0.0, iia_none=0.51, iia_effective=0.06,
                            n_effective=500)
    far = AlignmentResult(ident, iia=0.93, n=1000, per_count={}, seconds=0.0, iia_none=0.51, iia_effective=0.86,
                          n_effective=500)
    assert close.discriminating is False and far.discriminating is True
    record = far.as_dict()
    assert record["discriminating"] is True and record["intervals"]["iia"][0] < 0.93 < record["intervals"]["iia"][1]
    assert record["intervals"]["iia_effective"][1] - record["intervals"]["iia_effective"][0] > \
        record["intervals"]["iia"][1] - record["intervals"]["iia"][0]  # fewer pairs, wider
    assert AlignmentResult(ident, iia=0.9, n=10, per_count={}, seconds=0.0).discriminating is None


def test_the_untrained_control_is_a_fresh_net_of_the_same_architecture():
    from numsym_pl.das.controls import untrained_like

    trained = SMALL_NETS["lstm"]()
    state = torch.get_rng_state()
    a, b = untrained_like(trained, 5), untrained_like(trained, 5)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is untouched
    assert type(a) is type(trained) and a.init_config == trained.init_config
    pa, pb, pt = (torch.cat([p.flatten() for p in n.parameters()]) for n in (a, b, trained))
    assert torch.equal(pa, pb) and not torch.equal(pa, pt)
