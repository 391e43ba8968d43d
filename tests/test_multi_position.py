"""Multi-position interventions: the subspace swapped at the last k positions up to i_t (or all of
them), each from the source's state at the same distance before i_s."""

import pytest
import torch

from numsym_pl.das import Alignment, SearchSettings, SubspaceSwap, make_pairs, run_alignment
from numsym_pl.das.search import patched_logits_many, source_states, window_positions
from numsym_pl.errors import ConfigError
from numsym_pl.programs import get_program
from numsym_pl.tasks import NumericEquivalence
from tests.conftest import SMALL_NETS

TASK = NumericEquivalence("multi", p_void=0.2)
TINY = SearchSettings(n_train=128, n_val=64, n_test=64, max_steps=4, batch_size=32, eval_every=2, progress=False, random_seeds=2)


@pytest.mark.parametrize("positions", [3, "all"])
@pytest.mark.parametrize("site", ["resid.1", "mlp.1"])
def test_a_multi_position_swap_equals_splicing_the_swapped_states(site, positions):
    """Reference: the target's clean states at the window, swapped pointwise with the source's
    states at the same offsets, spliced in with forward_spliced (a transformer's states at one
    site do not depend on the patches at other positions of that site)."""
    torch.manual_seed(0)
    net = SMALL_NETS["rope"]().eval().requires_grad_(False)
    pairs = make_pairs(TASK, get_program("up_down"), ["count"], 40, seed=1)
    swap = SubspaceSwap(net.site_width(site), 4, seed=2)
    src = source_states(net, pairs, site, positions=positions)  # [N, P, d]
    assert src.dim() == 3 and src.shape[1] == (3 if positions == 3 else int(torch.minimum(pairs.source_pos, pairs.target_pos).max()) + 1)
    logits = patched_logits_many(net, [swap], site, pairs, src)

    tokens = pairs.cf[:, :-1]
    clean, source = net.states(tokens, site), net.states(pairs.source, site)
    at = window_positions(pairs, src.shape[1])
    mask = torch.zeros(tokens.shape, dtype=torch.bool)
    replacement = clean.clone()
    for b in range(len(pairs)):
        for j, p in enumerate(at[b].tolist()):
            if p >= 0:
                mask[b, p] = True
                replacement[b, p] = swap(clean[b, p][None], source[b, pairs.source_pos[b] - j][None])[0]
    assert (mask.sum(1) >= 1).all() and (mask.sum(1) > 1).any()
    reference = net.forward_spliced(tokens, site, mask, replacement)
    m = pairs.loss_mask
    assert torch.allclose(logits[m], reference[m], atol=1e-5)


def test_offsets_stop_where_either_sequence_ends():
    pairs = make_pairs(TASK, get_program("up_down"), ["count"], 200, seed=3)
    at = window_positions(pairs, 50)
    reach = torch.minimum(pairs.source_pos, pairs.target_pos)
    assert ((at >= 0).sum(1) == (reach + 1).clamp(max=50)).all()
    assert (at[:, 0] == pairs.target_pos).all()


def test_das_at_several_positions_runs_and_is_keyed_apart():
    torch.manual_seed(0)
    net = SMALL_NETS["rope"]()
    for positions in (2, "all"):
        a = Alignment("up_down", "count", "resid.1", 4, positions=positions)
        assert a.key == f"up_down.count/resid.1@{positions}" and a.identity["positions"] == positions
        result, _ = run_alignment(net, TASK, a, TINY)
        assert 0 <= result.iia <= 1 and result.steps == 4 and result.iia_none is not None
    assert "positions" not in Alignment("up_down", "count", "resid.1").identity  # one position keeps its old identity
    assert Alignment("up_down", "count", "resid.1").key == "up_down.count/resid.1"


@pytest.mark.parametrize("kwargs", [{"positions": 0}, {"positions": "some"}, {"positions": 2, "intervention": "attention_hiding",
                                                                                "program": "ctx_distr"}])
def test_bad_positions_are_named(kwargs):
    with pytest.raises(ConfigError, match="positions"):
        Alignment(**{"program": "up_down", **kwargs})
