"""A GRU recurrence over rows of different lengths with a hand-written backward.

``nn.GRU`` on a CPU steps through every padded position, records ~15 autograd nodes per step and,
in the backward, runs two small matmuls per step (one for the state gradient, one accumulating the
weight gradient); ``torch.compile`` does not trace it. Here the steps run on a packed layout (rows
sorted by length, step t holding the rows still running, as in ``pack_padded_sequence``), so padding
costs nothing; the forward keeps only what the backward needs; the backward runs one small matmul
per step, and the weight gradients are one large matmul over all steps at the end (skipped when the
weights are frozen, as in DAS). Same parameters and maths as ``nn.GRU`` (gate order r, z, n;
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``); the tests hold it to ``nn.GRU`` in outputs
and gradients.
"""

from __future__ import annotations

import contextlib
import os

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

#: with OMP_WAIT_POLICY=passive, a step's matmul below this many FLOPs runs on one CPU thread:
#: measured on 2 cores, a [128, 128] x [128, 384] product takes 110 us on one thread and 130-200 us
#: on two sleeping threads (61 us on two spinning ones, the default policy); two win from ~50 MFLOP
ONE_THREAD_BELOW_FLOPS = 3e7


@contextlib.contextmanager
def _step_threads(h: torch.Tensor, rows: int):
    """One CPU thread for the per-step work when its matmul is small and idle threads sleep (waking
    them costs more than they give); the large matmuls outside the loop keep every thread."""
    before = torch.get_num_threads()
    small = (h.device.type == "cpu" and os.environ.get("OMP_WAIT_POLICY", "").lower() == "passive"
             and 2 * rows * h.shape[1] * 3 * h.shape[1] < ONE_THREAD_BELOW_FLOPS)
    if small:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if small:
            torch.set_num_threads(before)


def _tanh_(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) = 2 sigmoid(2x) - 1 in place: 5x faster than torch.tanh on a CPU at these sizes."""
    return torch.sigmoid(x.mul_(2), out=x).mul_(2).sub_(1)


class _GRUScan(torch.autograd.Function):
    """Packed steps: step t owns rows ``offsets[t] : offsets[t] + sizes[t]`` of ``gi`` [N, 3H]
    (= x W_ih^T + b_ih), the first ``sizes[t]`` rows (longest first) of the batch."""

    @staticmethod
    def forward(ctx, gi, h0, w_hh, b_hh, sizes: list[int], offsets: list[int]):
        H = h0.shape[1]
        out = gi.new_empty(gi.shape[0], H)
        h_prev = gi.new_empty(gi.shape[0], H)  # the state each step starts from
        gh = gi.new_empty(gi.shape[0], 3 * H)  # W_hh h + b_hh
        act = gi.new_empty(gi.shape[0], 3 * H)  # r, z, n
        with _step_threads(h0, sizes[0]):
            for t, (n, o) in enumerate(zip(sizes, offsets)):
                hp = h_prev[o: o + n].copy_(out[offsets[t - 1]: offsets[t - 1] + n] if t else h0[:n])
                g, a, i = gh[o: o + n], act[o: o + n], gi[o: o + n]
                torch.addmm(b_hh, hp, w_hh.t(), out=g)
                rz = torch.add(i[:, : 2 * H], g[:, : 2 * H], out=a[:, : 2 * H]).sigmoid_()
                new = _tanh_(torch.addcmul(i[:, 2 * H:], rz[:, :H], g[:, 2 * H:], out=a[:, 2 * H:]))
                torch.lerp(new, hp, rz[:, H:], out=out[o: o + n])  # (1 - z) n + z h
        ctx.sizes, ctx.offsets = sizes, offsets
        ctx.save_for_backward(h0, w_hh, h_prev, gh[:, 2 * H:], act)
        return out

    @staticmethod
    def backward(ctx, d_out):
        h0, w_hh, h_prev, hn, act = ctx.saved_tensors
        sizes, offsets = ctx.sizes, ctx.offsets
        H = h_prev.shape[1]
        need_gi, _, need_w, need_b = ctx.needs_input_grad[:4]
        # everything but the state gradient is elementwise: precomputed for all steps at once, so a
        # step is one add, one multiply and one small matmul
        r, z, new = act.split(H, 1)
        through_tanh = (1 - z) * (1 - new * new)  # d(W_in x + r * hn) / d(new state)
        factor = torch.cat([through_tanh * hn * r * (1 - r), (h_prev - new) * z * (1 - z), through_tanh * r], 1)
        d = d_out.clone()  # becomes d loss / d state after each step
        d_gates = torch.empty_like(factor)  # d(W_hh h + b_hh)
        carry = None  # d loss / d state before the step just done
        with _step_threads(h0, sizes[0]):
            for t in range(len(sizes) - 1, -1, -1):
                n, o = sizes[t], offsets[t]
                if carry is not None:
                    d[o: o + carry.shape[0]] += carry
                dt, dg = d[o: o + n], d_gates[o: o + n]
                torch.mul(dt[:, None], factor[o: o + n].view(n, 3, H), out=dg.view(n, 3, H))
                carry = torch.addmm(dt * z[o: o + n], dg, w_hh)
        d_h0 = h0.new_zeros(h0.shape)
        if carry is not None:
            d_h0[: carry.shape[0]] = carry
        d_gi = torch.cat([d_gates[:, : 2 * H], d * through_tanh], 1) if need_gi else None
        d_w = d_gates.t() @ h_prev if need_w else None
        d_b = d_gates.sum(0) if need_b else None
        return d_gi, d_h0, d_w, d_b, None, None


def gru_scan(rnn: nn.GRU, x: torch.Tensor, lengths: torch.Tensor | None = None, h0: torch.Tensor | None = None,
             at: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``rnn`` (a one-layer, batch-first ``nn.GRU``) over ``x`` [B, L, E] from ``h0`` [B, H]
    (default 0), row b for ``lengths[b]`` steps (default L), as a packed sequence would.

    Returns (outputs, final state [B, H]) in the weights' dtype (fp32 under autocast). Outputs are
    [B, T, H] with T = the longest length and zeros past each row's end, or, given ``at = (rows,
    times)``, only the states at those positions [M, H] (zeros where a time is past its row's end).
    """
    if rnn.num_layers != 1 or rnn.bidirectional or not rnn.batch_first:
        raise ValueError("gru_scan runs one-layer, unidirectional, batch-first GRUs")
    B, L, _ = x.shape
    dev, dtype = x.device, rnn.weight_hh_l0.dtype
    lengths = torch.full((B,), L) if lengths is None else lengths.to("cpu", torch.long).clamp(0, L)
    if B == 0 or int(lengths.max()) == 0:
        raise ValueError("gru_scan: no row has a step to run")
    h0 = x.new_zeros(B, rnn.hidden_size, dtype=dtype) if h0 is None else h0.to(dtype)
    with torch.autocast(dev.type, enabled=False):
        # an empty row runs one step that nothing reads: its outputs are masked, its state is h0
        packed = pack_padded_sequence(x.to(dtype), lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
        gi = torch.addmm(rnn.bias_ih_l0, packed.data, rnn.weight_ih_l0.t())
        size_t = packed.batch_sizes
        offset_t = torch.cumsum(size_t, 0) - size_t
        out = _GRUScan.apply(gi, h0.index_select(0, packed.sorted_indices), rnn.weight_hh_l0, rnn.bias_hh_l0,
                             size_t.tolist(), offset_t.tolist())
    rank = packed.unsorted_indices.cpu()  # row b runs as the rank[b]-th longest
    T, N = len(size_t), len(packed.data)
    # the final state: each row's last output (h0 for an empty row)
    last = out.index_select(0, (offset_t[(lengths - 1).clamp(min=0)] + rank).to(dev))
    last = torch.where((lengths > 0).to(dev)[:, None], last, h0)
    if at is None:  # every position, zeros past each row's end
        rows, times = torch.arange(B).repeat_interleave(T), torch.arange(T).repeat(B)
    else:
        rows, times = (a.to("cpu") for a in at)
    valid = times < lengths[rows]
    picked = out.index_select(0, (offset_t[times.clamp(0, T - 1)] + rank[rows]).clamp(max=N - 1).to(dev))
    if not valid.all():
        picked = torch.where(valid.to(dev)[:, None], picked, 0)
    return (picked.view(B, T, -1) if at is None else picked), last
