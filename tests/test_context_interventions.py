import numpy as np
import pytest
import torch

from numsym_pl.das import Alignment, SearchSettings, run_alignment
from numsym_pl.das.interventions.attention_hiding import hiding_attn_mask, hiding_pairs
from numsym_pl.das.interventions.context_substitution import substitution_pairs
from numsym_pl.programs import PROGRAMS, TokenKinds
from numsym_pl.tasks import NumericEquivalence, VOCAB
from tests.conftest import SMALL_NETS

VOID_TASK = NumericEquivalence("multi", p_void=0.3)


def _demo_count(tokens, lo, hi, kinds):
    return int(np.isin(tokens[lo: hi + 1], kinds.demo).sum())


@pytest.mark.parametrize("name", ["up_down", "ctx_distr"])
def test_substitution_labels_by_hand(name):
    kinds = TokenKinds.of(VOID_TASK)
    p = substitution_pairs(VOID_TASK, PROGRAMS[name], 300, seed=0)
    cf, src, span = p.cf.numpy(), p.source.numpy(), p.span.numpy()
    for i in range(len(cf)):
        t = int(np.flatnonzero(cf[i] == VOCAB.TRIG)[0])
        assert (src[i, t] == VOCAB.TRIG)  # equal demo-phase lengths
        a, b = np.flatnonzero(span[i])[[0, -1]]
        if name == "ctx_distr":
            want = (_demo_count(cf[i], 1, a - 1, kinds) + _demo_count(src[i], a, b, kinds)
                    + _demo_count(cf[i], b + 1, t - 1, kinds))
        else:
            want = _demo_count(src[i], 1, b, kinds) + _demo_count(cf[i], b + 1, t - 1, kinds)
        assert p.label_count[i] == want
        assert cf[i, t + 1: t + 1 + want].tolist() == [VOCAB.RESP] * want and cf[i, t + 1 + want] == VOCAB.EOS


def test_substitution_needs_voids():
    with pytest.raises(ValueError, match="^p_void:"):
        substitution_pairs(NumericEquivalence("multi"), PROGRAMS["ctx_distr"], 10, 0)


def test_hiding_labels_and_mask():
    p = hiding_pairs(NumericEquivalence("single"), PROGRAMS["ctx_distr"], 200, seed=1)
    hidden = p.span
    k = hidden.sum(1)
    n = (p.cf == VOCAB.D0).sum(1)
    assert (k >= 1).all() and torch.equal(p.label_count, n - k)
    assert (p.cf[hidden] == VOCAB.D0).all()
    m = hiding_attn_mask(hidden[:2, :6])
    for b in range(2):
        for i in range(6):
            for j in range(6):
                assert m[b, i, j] == (not hidden[b, j] or i == j)
    with pytest.raises(ValueError, match="^program:"):
        hiding_pairs(NumericEquivalence("single"), PROGRAMS["up_down"], 10, 0)


def test_transformer_splice_equals_hooked_reference():
    torch.manual_seed(0)
    net = SMALL_NETS["rope"]().double()
    tokens = torch.randint(1, VOCAB.size, (3, 10))
    mask = torch.rand(3, 10) < 0.3
    mask[:, 2] = True
    repl = torch.randn(3, 10, 16, dtype=torch.float64)
    got = net.forward_spliced(tokens, "resid.1", mask, repl)
    handle = net.blocks[0].register_forward_hook(lambda m, i, o: torch.where(mask[..., None], repl, o))
    try:
        ref = net(tokens)
    finally:
        handle.remove()
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(net.forward_spliced_by_hooks(tokens, "resid.1", mask, repl), ref)


def test_recurrent_splice_patches_the_last_masked_state():
    torch.manual_seed(0)
    net = SMALL_NETS["gru"]()
    tokens = torch.randint(1, VOCAB.size, (2, 9))
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[0, 2:5] = True
    mask[1, 1:3] = True
    repl = torch.randn(2, 9, 16)
    got = net.forward_spliced(tokens, "state", mask, repl)
    ref = net.forward_patched(tokens, "state", torch.tensor([4, 2]),
                              lambda h: repl[torch.arange(2), torch.tensor([4, 2])])
    torch.testing.assert_close(got, ref)
    hooked = net.forward_spliced_by_hooks(tokens, "state", mask, repl)  # every masked state replaced
    torch.testing.assert_close(hooked[0, 4:], ref[0, 4:], atol=1e-5, rtol=1e-5)  # the same after the span
    torch.testing.assert_close(hooked[1, 2:], ref[1, 2:], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch, kind, site", [("rope", "attention_hiding", "resid.1"),
                                              ("nope", "context_substitution", "resid.1"),
                                              ("gru", "context_substitution", "state")])
def test_evaluate_runs_through_the_iia_metric(arch, kind, site):
    result, learned = run_alignment(SMALL_NETS[arch](), VOID_TASK,
                                    Alignment("ctx_distr", None, site, intervention=kind),
                                    SearchSettings(n_test=64, progress=False))
    assert 0 <= result.iia <= 1 and result.n == 64 and learned is None
    assert result.fit is None and result.baselines == {} and result.as_dict()["subspace"] is None
    # the floor (the net not intervened on, under the same labels) and the effective pairs
    assert 0 <= result.iia_none <= 1 and 0 < result.n_effective <= 64 and result.as_dict()["intervals"]["iia"]
    if kind == "context_substitution":
        assert 0 <= result.controls["unrelated_span"]["iia"] <= 1


def test_a_net_that_ignores_the_context_change_scores_the_floor():
    """With the intervention replaced by nothing, IIA equals the floor, pair for pair."""
    from numsym_pl.das.interventions.context import context_correct, unpatched
    from numsym_pl.das.interventions.context_substitution import ContextSubstitution, substitution_pairs
    from numsym_pl.programs import get_program

    net = SMALL_NETS["gru"]().eval()
    pairs = substitution_pairs(VOID_TASK, get_program("ctx_distr"), 64, seed=0)
    identical = type(pairs)(pairs.cf, pairs.cf, torch.zeros_like(pairs.span), pairs.loss_mask, pairs.label_count,
                            pairs.own_count)
    identical.span[:, 1] = True  # splice the target's own states: no change
    substitute = lambda *a: ContextSubstitution().patched(*a, site="state")
    torch.testing.assert_close(context_correct(net, identical, substitute), context_correct(net, pairs, unpatched))


def test_hiding_on_a_recurrent_net_is_refused():
    with pytest.raises(ValueError, match="^intervention:"):
        run_alignment(SMALL_NETS["gru"](), VOID_TASK,
                      Alignment("ctx_distr", None, "state", intervention="attention_hiding"),
                      SearchSettings(n_test=8, progress=False))
