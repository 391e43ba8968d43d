"""scan against nn.GRU and nn.LSTM: outputs, final states and every gradient, on rows of different lengths."""

import pytest
import torch

from numsym_pl.models import scan as scan_module
from numsym_pl.models.scan import scan

LENGTHS = torch.tensor([7, 3, 0, 5, 7, 1])


@pytest.fixture(params=["gru", "lstm"])
def rnn(request):
    torch.manual_seed(0)
    return (torch.nn.GRU if request.param == "gru" else torch.nn.LSTM)(5, 6, batch_first=True).double()


def width(rnn):
    return (2 if isinstance(rnn, torch.nn.LSTM) else 1) * rnn.hidden_size


def step_by_step(rnn, x, s0, lengths):
    """The torch module one step at a time from state s0 ([h] or [h; c]): states [B, T, d] with zeros
    past each row's end, and each row's state after its last step (s0 for an empty row)."""
    lstm = isinstance(rnn, torch.nn.LSTM)
    s, states = s0, []
    for t in range(int(lengths.max())):
        hx = tuple(s[None].chunk(2, -1)) if lstm else s[None]
        _, hx = rnn(x[:, t: t + 1], tuple(h.contiguous() for h in hx) if lstm else hx.contiguous())
        new = torch.cat([hx[0][0], hx[1][0]], -1) if lstm else hx[0]
        running = (lengths > t)[:, None]
        s = torch.where(running, new, s)
        states.append(torch.where(running, new, 0))
    return torch.stack(states, 1), s


def inputs(rnn, requires_grad=True):
    torch.manual_seed(1)
    x = torch.randn(len(LENGTHS), 9, 5, dtype=torch.double, requires_grad=requires_grad)
    s0 = torch.randn(len(LENGTHS), width(rnn), dtype=torch.double, requires_grad=requires_grad)
    return x, s0


def test_outputs_final_state_and_gradients_equal_the_torch_module(rnn):
    x, h0 = inputs(rnn)
    want_out, want_last = step_by_step(rnn, x, h0, LENGTHS)
    got_out, got_last = scan(rnn, x, LENGTHS, h0)
    torch.testing.assert_close(got_out, want_out)
    torch.testing.assert_close(got_last, want_last)
    w_out, w_last = torch.randn_like(want_out), torch.randn_like(want_last)
    wrt = [x, h0, *rnn.parameters()]
    want = torch.autograd.grad((want_out * w_out).sum() + (want_last * w_last).sum(), wrt)
    got = torch.autograd.grad((got_out * w_out).sum() + (got_last * w_last).sum(), wrt)
    for name, g, w in zip(["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"], got, want):
        torch.testing.assert_close(g, w, msg=name)


def test_gradcheck_full_length_and_ragged(rnn):
    x, h0 = inputs(rnn)
    assert torch.autograd.gradcheck(lambda x, h0: scan(rnn, x, LENGTHS, h0), (x, h0))
    assert torch.autograd.gradcheck(lambda x, h0: scan(rnn, x, None, h0), (x, h0))


def test_at_picks_the_states_at_those_positions_in_their_order(rnn):
    x, h0 = inputs(rnn, requires_grad=False)
    full, _ = scan(rnn, x, LENGTHS, h0)
    rows, times = torch.tensor([4, 0, 3, 0]), torch.tensor([6, 2, 0, 0])
    picked, _ = scan(rnn, x, LENGTHS, h0, at=(rows, times))
    torch.testing.assert_close(picked, full[rows, times])


def test_frozen_weights_get_no_gradient_and_the_state_still_does(rnn):
    rnn.requires_grad_(False)
    x, h0 = inputs(rnn)
    out, last = scan(rnn, x, LENGTHS, h0)
    (out.sum() + last.sum()).backward()
    assert all(p.grad is None for p in rnn.parameters())
    assert h0.grad is not None and h0.grad[LENGTHS > 0].abs().sum() > 0


@pytest.mark.parametrize("cell", [torch.nn.GRU, torch.nn.LSTM])
def test_float32_under_bf16_autocast_matches_fp32(cell):
    torch.manual_seed(0)
    rnn = cell(8, 8, batch_first=True)
    x = torch.randn(3, 5, 8)
    want, _ = scan(rnn, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _ = scan(rnn, x)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("threshold", [0.0, float("inf")])
def test_thread_setting_is_restored_and_does_not_change_results(rnn, monkeypatch, threshold):
    x, h0 = inputs(rnn, requires_grad=False)
    want, _ = scan(rnn, x, LENGTHS, h0)
    monkeypatch.setattr(scan_module, "ONE_THREAD_BELOW_FLOPS", threshold)
    before = torch.get_num_threads()
    got, _ = scan(rnn, x, LENGTHS, h0)
    assert torch.get_num_threads() == before
    torch.testing.assert_close(got, want)


def test_bad_input_is_named(rnn):
    with pytest.raises(ValueError, match="no row has a step"):
        scan(rnn, torch.zeros(2, 3, 5, dtype=torch.double), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="one-layer"):
        scan(type(rnn)(5, 6, num_layers=2, batch_first=True), torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match="without projection"):
        scan(torch.nn.LSTM(5, 6, proj_size=3, batch_first=True), torch.zeros(2, 3, 5))


@pytest.mark.parametrize("arch", ["gru", "lstm"])
def test_model_trains_and_reads_as_with_the_torch_module(arch):
    """The model's forward (all positions, or the masked ones as in training) and its states' h
    equal nn.GRU's / nn.LSTM's."""
    from numsym_pl.models import GRULM, LSTMLM
    from numsym_pl.tasks import VOCAB

    torch.manual_seed(0)
    net = (GRULM if arch == "gru" else LSTMLM)(VOCAB.size, hidden_size=16)
    tokens = torch.randint(1, VOCAB.size, (4, 10))
    mask = torch.arange(10)[None] < torch.tensor([[10], [3], [6], [1]])
    h = net.rnn(net.embed(tokens))[0]
    want = net.decoder(h)
    torch.testing.assert_close(net(tokens), want)
    torch.testing.assert_close(net(tokens, out_mask=mask), want[mask])
    torch.testing.assert_close(net.states(tokens, "state")[..., :16], h)


@pytest.mark.parametrize("policy", [None, "passive", "ACTIVE"])
def test_the_thread_choice_depends_on_sizes_never_on_the_environment(monkeypatch, policy):
    """The same run computes the same numbers whatever OMP_WAIT_POLICY the caller exported."""
    if policy is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", policy)
    torch.set_num_threads(2)
    with scan_module._step_threads(torch.zeros(384, 128), rows=128):
        assert torch.get_num_threads() == 1  # a small per-step matmul
    with scan_module._step_threads(torch.zeros(3072, 1024), rows=512):
        assert torch.get_num_threads() == 2  # a large one keeps the threads
    assert torch.get_num_threads() == 2


def test_numsym_pl_leaves_the_wait_policy_to_the_caller_and_the_runtime():
    """numsym_pl once set OMP_WAIT_POLICY=PASSIVE, which made a fit 1.4x slower (bench/omp_policy.py);
    importing it now leaves the environment's policy, or its absence, as it was."""
    import os
    import subprocess
    import sys

    code = "import numsym_pl, os; print(os.environ.get('OMP_WAIT_POLICY', 'unset'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "unset"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "PASSIVE"}, capture_output=True,
                         text=True, timeout=60).stdout
    assert out.strip() == "PASSIVE"
