"""Post-hoc analyses: gradience, phase flips, and the multi-patch forward they use."""

import numpy as np
import torch

from numsym_pl.das.interventions import Interchange
from numsym_pl.analysis.gradience import count_direction, gradience, greedy_response_length
from numsym_pl.analysis.phase_flips import flip_sequences, phase_flips
from numsym_pl.das import IIA, Alignment
from numsym_pl.das.iia import exact_rows
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.pairs.counterfactual import make_pairs
from numsym_pl.das.interventions.patched import evaluate, pair_correct, patched_logits
from numsym_pl.das.pairs.sets import source_states
from numsym_pl.lit_module import greedy_decode
from numsym_pl.programs import TokenKinds, get_program
from numsym_pl.tasks import NumericEquivalence, VOCAB
from tests.conftest import SMALL_NETS


def _gru():
    torch.manual_seed(0)
    return SMALL_NETS["gru"]().eval()


def test_pair_correct_agrees_with_the_iia_metric():
    net, task = _gru(), NumericEquivalence("multi")
    swap = SubspaceSwap(16, 4, 1, "random", seed=3)
    pairs = make_pairs(task, get_program("up_down"), ["count"], 200, seed=1)
    src = source_states(net, pairs, "state")
    metric = evaluate(net, swap, "state", pairs, src)
    assert abs(pair_correct(net, swap, "state", pairs, src).float().mean().item() - metric.compute().item()) < 1e-6
    direct = IIA()  # the metric fed the logits themselves agrees too
    with torch.no_grad():
        direct.update(exact_rows(patched_logits(net, swap, "state", pairs, src), pairs.cf, pairs.loss_mask))
    assert abs(direct.compute().item() - metric.compute().item()) < 1e-6


def test_forward_patched_many_applies_patches_in_time_order():
    net = _gru()
    tokens = torch.as_tensor(NumericEquivalence("multi").trials(np.full(4, 6), np.random.default_rng(0)).tokens)
    p1, p2 = torch.full((4,), 2), torch.full((4,), 5)
    const = torch.randn(16)
    one = net.forward_patched_many(tokens, "state", [(p2, lambda h: const.expand_as(h))])
    two = net.forward_patched_many(tokens, "state", [(p1, lambda h: h * 3), (p2, lambda h: const.expand_as(h))])
    assert torch.allclose(one[:, 5:], two[:, 5:], atol=1e-6)  # after the second patch only it matters
    assert not torch.allclose(one[:, 2:5], two[:, 2:5])  # between the patches the first one shows
    ref = net.forward_patched(tokens, "state", p1, lambda h: h * 3)
    assert torch.allclose(net.forward_patched_many(tokens, "state", [(p1, lambda h: h * 3)]), ref, atol=1e-5)


def _up_down_labels(tokens, flips):
    """Up-Down stepped token by token with its phase overwritten after each flip position."""
    program, kinds = get_program("up_down"), TokenKinds.of(NumericEquivalence("multi"))
    state, preds = program.init(), []
    for t, tok in enumerate(tokens):
        state = program.step(state, np.int64(tok), kinds)
        for pos, phase in flips:
            if pos == t:
                state = {**state, "phase": np.int64(phase)}
        preds.append(int(program.predict(state, {"count": np.int64(99)}, kinds)))
    return preds


def test_phase_flip_sequences_follow_up_down():
    task = NumericEquivalence("multi")
    for flips in (1, 2, 3, 4):
        seq = flip_sequences(task, 50, np.random.default_rng(flips), flips)
        assert len(seq["patches"]) == flips and [p[1] for p in seq["patches"]] == [1, 0, 1, 0][:flips]
        for b in range(50):
            tokens = seq["tokens"][b].tolist()
            preds = _up_down_labels(tokens, [(int(pos[b]), phase) for pos, phase in seq["patches"]])
            scored = seq["scored"][b].nonzero().flatten().tolist()
            assert scored and all(preds[t] == tokens[t + 1] for t in scored)
            assert all(tokens[t + 1] in (task.response_token, VOCAB.EOS) for t in scored)


def test_phase_flips_and_gradience_run_on_a_recurrent_net():
    net, task = _gru(), NumericEquivalence("multi")
    swap = SubspaceSwap(16, 4, 2, "rotation", seed=0)
    out = phase_flips(net, task, Alignment("up_down", ["count", "phase"], "state", Interchange(4)), swap, n=40)
    assert set(out) == {"n", "iia", "unpatched"} and set(out["iia"]) == set(out["unpatched"]) == {1, 2, 3, 4}
    g = gradience(net, task, Alignment("up_down", ["count", "phase"], "state", Interchange(4)), swap, n=60)
    m = g["magnitude"]
    assert len(m["alphas"]) == len(m["shift_mean"]) == len(m["exact"]) and max(map(int, m["own"])) == 30
    assert g["per_source_value"] and g["per_target_count"]


def test_phase_flips_skip_nets_without_multi_patching():
    torch.manual_seed(0)
    net = SMALL_NETS["nope"]().eval()
    out = phase_flips(net, NumericEquivalence("multi"),
                      Alignment("up_down", ["count", "phase"], "resid.1", Interchange(4)), SubspaceSwap(16, 4, 2))
    assert "skipped" in out


def test_response_length_matches_free_running_decoding():
    net, task = _gru(), NumericEquivalence("multi")
    trials = task.trials(np.arange(1, 9), np.random.default_rng(0))
    tokens, trigger = torch.as_tensor(trials.tokens), torch.as_tensor(trials.trigger)
    written = greedy_decode(net, tokens, trigger, 12)
    expected = (written == task.response_token).long().cumprod(1).sum(1)
    assert torch.equal(greedy_response_length(net, tokens, trigger, "state", lambda h: h, 12), expected)


def test_count_direction_recovers_a_planted_linear_code():
    class Planted(torch.nn.Module):  # state at t = the Up-Down count after t * v + a phase offset + noise
        def __init__(self):
            super().__init__()
            self.v, self.w = torch.randn(8), torch.randn(8)

        def states(self, tokens, site):
            seen, said = (tokens >= VOCAB.D0).cumsum(1), (tokens == VOCAB.RESP).cumsum(1)
            phase = (tokens == VOCAB.TRIG).cumsum(1).float()
            count = (seen - said).float()
            return count[..., None] * self.v + phase[..., None] * self.w + 0.01 * torch.randn(*tokens.shape, 8)

    torch.manual_seed(0)
    net = Planted()
    swap = SubspaceSwap(8, 8, 1, "random", seed=1)  # the whole space: the direction must be v itself
    d = count_direction(net, NumericEquivalence("multi"), "state", swap, n=300)
    assert torch.allclose(d, net.v, atol=0.01)


def test_one_rounding_rule_for_exactness():
    from numsym_pl.analysis.gradience import is_exact

    err = torch.tensor([0.0, 0.5, -0.5, 0.51, -1.0, 1.5])  # length - count - alpha
    assert is_exact(err).tolist() == [True, True, True, False, False, False]
