"""Multi-position interventions: the subspace swapped at the last k positions up to i_t (or all of
them, or those in both trials' demo phase), each from the source's state at the same distance
before i_s."""

import pytest
import torch

from numsym_pl.das.interventions import Interchange
from numsym_pl.das import Alignment, SearchSettings, SubspaceSwap, make_pairs, run_alignment
from numsym_pl.das.pairs.counterfactual import PairBatch
from numsym_pl.das.interventions.patched import patched_logits_many
from numsym_pl.das.pairs.sets import source_states
from numsym_pl.das.pairs.windows import demo_window, window_positions, with_window
from numsym_pl.errors import ConfigError
from numsym_pl.programs import get_program
from numsym_pl.tasks import NumericEquivalence
from tests.conftest import SMALL_NETS

TASK = NumericEquivalence("multi", p_void=0.2)
TINY = SearchSettings(n_train=128, n_val=64, n_test=64, max_steps=4, batch_size=32, eval_every=2, progress=False,
                      random_seeds=2)


@pytest.mark.parametrize("positions", [3, "all", "demo"])
@pytest.mark.parametrize("site", ["resid.1", "mlp.1"])
def test_a_multi_position_swap_equals_splicing_the_swapped_states(site, positions):
    """Reference: the target's clean states at the window, swapped pointwise with the source's
    states at the same offsets, spliced in with forward_spliced (a transformer's states at one
    site do not depend on the patches at other positions of that site)."""
    torch.manual_seed(0)
    net = SMALL_NETS["rope"]().eval().requires_grad_(False)
    pairs = make_pairs(TASK, get_program("up_down"), ["count"], 40, seed=1)
    if positions == "demo":
        pairs = with_window(pairs, "demo", TASK.token_roles["trigger"])
    swap = SubspaceSwap(net.site_width(site), 4, seed=2)
    src = source_states(net, pairs, site, positions=positions)  # [N, P, d]
    reach = int(torch.minimum(pairs.source_pos, pairs.target_pos).max()) + 1
    assert src.dim() == 3 and src.shape[1] == {3: 3, "all": reach}.get(
        positions, pairs.window.shape[1] if pairs.window is not None else 0)
    logits = patched_logits_many(net, [swap], site, pairs, src)

    tokens = pairs.cf[:, :-1]
    clean, source = net.states(tokens, site), net.states(pairs.source, site)
    at = pairs.window if positions == "demo" else window_positions(pairs, src.shape[1])
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


def _tokens(text: str) -> list[int]:
    v = TASK.vocab
    ids = {"B": v.BOS, "D": TASK.demo_tokens[0], "V": v.VOID, "T": v.TRIG, "R": v.RESP, "E": v.EOS, "_": v.PAD}
    return [ids[c] for c in text]


def test_the_demo_window_keeps_i_t_and_the_offsets_inside_both_demo_phases():
    #            positions  012345678
    source = torch.tensor([_tokens("BDDDDTRRR"), _tokens("BDDTRRE__")])
    cf = torch.tensor([_tokens("BDVDTRRRE"), _tokens("BDDDDDTRR")])
    n = 2
    pairs = PairBatch(source=source, source_pos=torch.tensor([3, 4]), cf=cf, target_pos=torch.tensor([3, 7]),
                      loss_mask=torch.ones(n, 8, dtype=torch.bool), source_value=torch.zeros(n),
                      target_quantity=torch.zeros(n), blocks=torch.ones(n, 1, dtype=torch.bool), key=torch.arange(n))
    window = demo_window(pairs, TASK.token_roles["trigger"])
    # pair 0: i_t 3, i_s 3, both demo phases end at 4 (source) and 4 (cf): offsets 0, 1, 2 (positions 3, 2, 1), not BOS
    # pair 1: i_s 4 is the source's first R (its trigger at 3), i_t 7 the cf's R (trigger at 6): offset 0 (as
    #         for one position); offset 1 has the source's T at 3: no; offsets 2 and 3 reach demo tokens in both
    assert window.tolist() == [[3, 2, 1, -1], [7, -1, 5, 4]]
    for positions in ("all", 2):  # the other windows are the ones window_positions gives
        assert torch.equal(with_window(pairs, positions).window,
                           window_positions(pairs, 5 if positions == "all" else 2))
    assert with_window(pairs, 1) is pairs
    with pytest.raises(ConfigError, match="positions: 'demo' needs a task with a trigger"):
        with_window(pairs, "demo", None)


def test_das_at_several_positions_runs_and_is_keyed_apart():
    torch.manual_seed(0)
    net = SMALL_NETS["rope"]()
    for positions in (2, "all", "demo"):
        a = Alignment("up_down", "count", "resid.1", Interchange(4, positions=positions))
        assert a.key == f"up_down.count/resid.1@{positions}" and a.identity["positions"] == positions
        result, _ = run_alignment(net, TASK, a, TINY)
        assert 0 <= result.iia <= 1 and result.steps == 4 and result.iia_none is not None
    assert "positions" not in Alignment("up_down", "count", "resid.1").identity  # one position keeps its old identity
    assert Alignment("up_down", "count", "resid.1").key == "up_down.count/resid.1"


@pytest.mark.parametrize("intervention", [{"class_path": "Interchange", "init_args": {"positions": 0}},
                                          {"class_path": "Interchange", "init_args": {"positions": "some"}},
                                          {"class_path": "attention_hiding", "init_args": {"positions": 2}}])
def test_bad_positions_are_named(intervention):
    program = "ctx_distr" if intervention["class_path"] == "attention_hiding" else "up_down"
    with pytest.raises(ConfigError, match="positions"):
        Alignment(program, intervention=intervention)
