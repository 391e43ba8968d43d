"""gru_scan against nn.GRU: outputs, final states and every gradient, on rows of different lengths."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from numsym_pl.models import gru_scan as scan_module
from numsym_pl.models.gru_scan import gru_scan

LENGTHS = torch.tensor([7, 3, 0, 5, 7, 1])


@pytest.fixture
def rnn():
    torch.manual_seed(0)
    return torch.nn.GRU(5, 6, batch_first=True).double()


def packed_gru(rnn, x, h0, lengths):
    """nn.GRU on a packed sequence; an empty row keeps h0 and has no outputs."""
    out, hn = rnn(pack_padded_sequence(x, lengths.clamp(min=1), batch_first=True, enforce_sorted=False), h0[None])
    out = pad_packed_sequence(out, batch_first=True)[0]
    empty = lengths == 0
    return torch.where(empty[:, None, None], 0, out), torch.where(empty[:, None], h0, hn[0])


def inputs(requires_grad=True):
    torch.manual_seed(1)
    x = torch.randn(len(LENGTHS), 9, 5, dtype=torch.double, requires_grad=requires_grad)
    h0 = torch.randn(len(LENGTHS), 6, dtype=torch.double, requires_grad=requires_grad)
    return x, h0


def test_outputs_final_state_and_gradients_equal_nn_gru(rnn):
    x, h0 = inputs()
    want_out, want_last = packed_gru(rnn, x, h0, LENGTHS)
    got_out, got_last = gru_scan(rnn, x, LENGTHS, h0)
    torch.testing.assert_close(got_out, want_out)
    torch.testing.assert_close(got_last, want_last)
    w_out, w_last = torch.randn_like(want_out), torch.randn_like(want_last)
    wrt = [x, h0, *rnn.parameters()]
    want = torch.autograd.grad((want_out * w_out).sum() + (want_last * w_last).sum(), wrt)
    got = torch.autograd.grad((got_out * w_out).sum() + (got_last * w_last).sum(), wrt)
    for name, g, w in zip(["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"], got, want):
        torch.testing.assert_close(g, w, msg=name)


def test_gradcheck_full_length_and_ragged(rnn):
    x, h0 = inputs()
    assert torch.autograd.gradcheck(lambda x, h0: gru_scan(rnn, x, LENGTHS, h0), (x, h0))
    assert torch.autograd.gradcheck(lambda x, h0: gru_scan(rnn, x, None, h0), (x, h0))


def test_at_picks_the_states_at_those_positions_in_their_order(rnn):
    x, h0 = inputs(requires_grad=False)
    full, _ = gru_scan(rnn, x, LENGTHS, h0)
    rows, times = torch.tensor([4, 0, 3, 0]), torch.tensor([6, 2, 0, 0])
    picked, _ = gru_scan(rnn, x, LENGTHS, h0, at=(rows, times))
    torch.testing.assert_close(picked, full[rows, times])


def test_frozen_weights_get_no_gradient_and_the_state_still_does(rnn):
    rnn.requires_grad_(False)
    x, h0 = inputs()
    out, last = gru_scan(rnn, x, LENGTHS, h0)
    (out.sum() + last.sum()).backward()
    assert all(p.grad is None for p in rnn.parameters())
    assert h0.grad is not None and h0.grad[LENGTHS > 0].abs().sum() > 0


def test_float32_under_bf16_autocast_matches_fp32():
    torch.manual_seed(0)
    rnn = torch.nn.GRU(8, 8, batch_first=True)
    x = torch.randn(3, 5, 8)
    want, _ = gru_scan(rnn, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _ = gru_scan(rnn, x)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("threshold", [0.0, float("inf")])
def test_thread_setting_is_restored_and_does_not_change_results(rnn, monkeypatch, threshold):
    x, h0 = inputs(requires_grad=False)
    want, _ = gru_scan(rnn, x, LENGTHS, h0)
    monkeypatch.setattr(scan_module, "ONE_THREAD_BELOW_FLOPS", threshold)
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    before = torch.get_num_threads()
    got, _ = gru_scan(rnn, x, LENGTHS, h0)
    assert torch.get_num_threads() == before
    torch.testing.assert_close(got, want)


def test_bad_input_is_named(rnn):
    with pytest.raises(ValueError, match="no row has a step"):
        gru_scan(rnn, torch.zeros(2, 3, 5, dtype=torch.double), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="one-layer"):
        gru_scan(torch.nn.GRU(5, 6, num_layers=2, batch_first=True), torch.zeros(2, 3, 5))


def test_grulm_trains_and_reads_as_with_nn_gru():
    """The model's forward (all positions, or the masked ones as in training) equals nn.GRU's."""
    from numsym_pl.models import GRULM
    from numsym_pl.tasks import VOCAB

    torch.manual_seed(0)
    net = GRULM(VOCAB.size, hidden_size=16)
    tokens = torch.randint(1, VOCAB.size, (4, 10))
    mask = torch.arange(10)[None] < torch.tensor([[10], [3], [6], [1]])
    want = net.decoder(net.rnn(net.embed(tokens))[0])
    torch.testing.assert_close(net(tokens), want)
    torch.testing.assert_close(net(tokens, out_mask=mask), want[mask])
    torch.testing.assert_close(net.states(tokens, "state"), net.rnn(net.embed(tokens))[0])
