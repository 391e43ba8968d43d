"""GRU and LSTM recurrences over rows of different lengths with hand-written backwards.

``nn.GRU`` / ``nn.LSTM`` on a CPU step through every padded position, record a dozen autograd
nodes per step and, in the backward, run two small matmuls per step (one for the state gradient,
one accumulating the weight gradient); ``torch.compile`` does not trace them. Here the steps run
on ``pack_padded_sequence``'s layout (rows sorted by length, step t holding the rows still
running), so padding costs nothing; the forward keeps only what the backward needs; the backward
runs one small matmul per step, and the weight gradients are one large matmul over all steps at the
end (skipped when the weights are frozen, as in DAS). Same parameters and maths as the torch
modules (GRU gates r, z, n with ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``; LSTM gates
i, f, g, o); the tests hold both to them in outputs and gradients.

The state is the DAS site: ``h`` for a GRU, ``[h; c]`` for an LSTM.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from numsym_pl.threads import cpu_threads

#: a step's matmul below this many FLOPs runs on one CPU thread, a choice made from the sizes alone,
#: so that one command computes the same numbers whatever OpenMP wait policy the caller exported.
#: Measured on 2 cores: a [128, 128] x [128, 384] product takes 110 us on one thread and 130-200 us
#: on two sleeping threads (OMP_WAIT_POLICY=passive; 61 us on two spinning ones); two win from
#: ~50 MFLOP
ONE_THREAD_BELOW_FLOPS = 3e7


def _step_threads(w_hh: torch.Tensor, rows: int) -> contextlib.AbstractContextManager:
    """One CPU thread for the per-step work when its matmul is small (waking sleeping threads costs
    more than they give); the large matmuls outside the loop keep every thread. The choice depends
    on the sizes only, never on the environment: the same run gives the same numbers."""
    small = w_hh.device.type == "cpu" and 2 * rows * w_hh.numel() < ONE_THREAD_BELOW_FLOPS
    return cpu_threads(1) if small else contextlib.nullcontext()


def _tanh_(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) = 2 sigmoid(2x) - 1 in place: 5x faster than torch.tanh on a CPU at these sizes."""
    return torch.sigmoid(x.mul_(2), out=x).mul_(2).sub_(1)


def _starts(out: torch.Tensor, s0: torch.Tensor, t: int, n: int, offsets: list[int]) -> torch.Tensor:
    """The state step t starts from, for its n rows."""
    return out[offsets[t - 1]: offsets[t - 1] + n] if t else s0[:n]


def _state_grad(carry: torch.Tensor | None, s0: torch.Tensor) -> torch.Tensor:
    d_s0 = s0.new_zeros(s0.shape)
    if carry is not None:
        d_s0[: carry.shape[0]] = carry
    return d_s0


class _GRUScan(torch.autograd.Function):
    """Packed steps: step t owns rows ``offsets[t] : offsets[t] + sizes[t]`` of ``gi`` [N, 3H]
    (= x W_ih^T + b_ih), the first ``sizes[t]`` rows (longest first) of the batch."""

    @staticmethod
    def forward(ctx, gi, s0, w_hh, b_hh, sizes: list[int], offsets: list[int]):
        H = s0.shape[1]
        out = gi.new_empty(gi.shape[0], H)
        prev = gi.new_empty(gi.shape[0], H)  # the state each step starts from
        gh = gi.new_empty(gi.shape[0], 3 * H)  # W_hh h + b_hh
        act = gi.new_empty(gi.shape[0], 3 * H)  # r, z, n
        with _step_threads(w_hh, sizes[0]):
            for t, (n, o) in enumerate(zip(sizes, offsets)):
                hp = prev[o: o + n].copy_(_starts(out, s0, t, n, offsets))
                g, a, i = gh[o: o + n], act[o: o + n], gi[o: o + n]
                torch.addmm(b_hh, hp, w_hh.t(), out=g)
                rz = torch.add(i[:, : 2 * H], g[:, : 2 * H], out=a[:, : 2 * H]).sigmoid_()
                new = _tanh_(torch.addcmul(i[:, 2 * H:], rz[:, :H], g[:, 2 * H:], out=a[:, 2 * H:]))
                torch.lerp(new, hp, rz[:, H:], out=out[o: o + n])  # (1 - z) n + z h
        ctx.sizes, ctx.offsets = sizes, offsets
        ctx.save_for_backward(s0, w_hh, prev, gh[:, 2 * H:], act)
        return out

    @staticmethod
    def backward(ctx, d_out):
        s0, w_hh, prev, hn, act = ctx.saved_tensors
        sizes, offsets = ctx.sizes, ctx.offsets
        H = prev.shape[1]
        need_gi, _, need_w, need_b = ctx.needs_input_grad[:4]
        # everything but the state gradient is elementwise: precomputed for all steps at once, so a
        # step is one add, one multiply and one small matmul
        r, z, new = act.split(H, 1)
        through_tanh = (1 - z) * (1 - new * new)  # d(W_in x + r * hn) / d(new state)
        factor = torch.cat([through_tanh * hn * r * (1 - r), (prev - new) * z * (1 - z), through_tanh * r], 1)
        d = d_out.clone()  # becomes d loss / d state after each step
        d_gates = torch.empty_like(factor)  # d(W_hh h + b_hh)
        carry = None  # d loss / d state before the step just done
        with _step_threads(w_hh, sizes[0]):
            for t in range(len(sizes) - 1, -1, -1):
                n, o = sizes[t], offsets[t]
                if carry is not None:
                    d[o: o + carry.shape[0]] += carry
                dt, dg = d[o: o + n], d_gates[o: o + n]
                torch.mul(dt[:, None], factor[o: o + n].view(n, 3, H), out=dg.view(n, 3, H))
                carry = torch.addmm(dt * z[o: o + n], dg, w_hh)
        d_gi = torch.cat([d_gates[:, : 2 * H], d * through_tanh], 1) if need_gi else None
        d_w = d_gates.t() @ prev if need_w else None
        d_b = d_gates.sum(0) if need_b else None
        return d_gi, _state_grad(carry, s0), d_w, d_b, None, None


class _LSTMScan(torch.autograd.Function):
    """As ``_GRUScan``, with ``gi`` [N, 4H] = x W_ih^T + b_ih + b_hh and states [h; c] [., 2H]."""

    @staticmethod
    def forward(ctx, gi, s0, w_hh, sizes: list[int], offsets: list[int]):
        H = s0.shape[1] // 2
        out = gi.new_empty(gi.shape[0], 2 * H)  # [h; c] after each step
        prev = gi.new_empty(gi.shape[0], 2 * H)  # [h; c] each step starts from
        act = gi.new_empty(gi.shape[0], 4 * H)  # i, f, g, o
        tanh_c = gi.new_empty(gi.shape[0], H)
        with _step_threads(w_hh, sizes[0]):
            for t, (n, o) in enumerate(zip(sizes, offsets)):
                p = prev[o: o + n].copy_(_starts(out, s0, t, n, offsets))
                a, s, tc = act[o: o + n], out[o: o + n], tanh_c[o: o + n]
                torch.addmm(gi[o: o + n], p[:, :H], w_hh.t(), out=a)
                a[:, : 2 * H].sigmoid_()
                a[:, 3 * H:].sigmoid_()
                i, f, g, og = a.split(H, 1)
                _tanh_(g)
                c = torch.mul(f, p[:, H:], out=s[:, H:]).addcmul_(i, g)  # f c + i g
                torch.mul(og, _tanh_(tc.copy_(c)), out=s[:, :H])  # o tanh(c)
        ctx.sizes, ctx.offsets = sizes, offsets
        ctx.save_for_backward(s0, w_hh, prev, act, tanh_c)
        return out

    @staticmethod
    def backward(ctx, d_out):
        s0, w_hh, prev, act, tanh_c = ctx.saved_tensors
        sizes, offsets = ctx.sizes, ctx.offsets
        H = tanh_c.shape[1]
        need_gi, _, need_w = ctx.needs_input_grad[:3]
        # elementwise factors for all steps at once; a step is five elementwise ops and one small matmul
        i, f, g, og = act.split(H, 1)
        c_from_h = og * (1 - tanh_c * tanh_c)  # d h / d c, as h = o tanh(c)
        ifg = torch.cat([g * i * (1 - i), prev[:, H:] * f * (1 - f), i * (1 - g * g)], 1)  # d pre_{i,f,g} / d c
        o_from_h = tanh_c * og * (1 - og)  # d pre_o / d h
        d = d_out.clone()  # becomes d loss / d [h; c] after each step
        d_pre = torch.empty_like(act)  # d(x W_ih^T + h W_hh^T + b)
        carry = None  # d loss / d [h; c] before the step just done
        with _step_threads(w_hh, sizes[0]):
            for t in range(len(sizes) - 1, -1, -1):
                n, o = sizes[t], offsets[t]
                if carry is not None:
                    d[o: o + carry.shape[0]] += carry
                dh, dc, dp = d[o: o + n, :H], d[o: o + n, H:], d_pre[o: o + n]
                dc.addcmul_(dh, c_from_h[o: o + n])
                torch.mul(dc[:, None], ifg[o: o + n].view(n, 3, H), out=dp[:, : 3 * H].view(n, 3, H))
                torch.mul(dh, o_from_h[o: o + n], out=dp[:, 3 * H:])
                carry = torch.empty_like(d[o: o + n])
                torch.mm(dp, w_hh, out=carry[:, :H])
                torch.mul(dc, f[o: o + n], out=carry[:, H:])
        d_w = d_pre.t() @ prev[:, :H] if need_w else None
        return (d_pre if need_gi else None), _state_grad(carry, s0), d_w, None, None


def scan(rnn: nn.GRU | nn.LSTM, x: torch.Tensor, lengths: torch.Tensor | None = None,
         s0: torch.Tensor | None = None,
         at: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``rnn`` (a one-layer, batch-first ``nn.GRU`` or ``nn.LSTM``) over ``x`` [B, L, E] from
    state ``s0`` [B, d] (``h``, or ``[h; c]`` for an LSTM; default 0), row b for ``lengths[b]``
    steps (default L), as a packed sequence would.

    Returns (states, final state [B, d]) in the weights' dtype (fp32 under autocast). States are
    [B, T, d] with T = the longest length and zeros past each row's end, or, given ``at = (rows,
    times)``, only the states at those positions [M, d] (zeros where a time is past its row's end).
    """
    lstm = isinstance(rnn, nn.LSTM)
    if rnn.num_layers != 1 or rnn.bidirectional or not rnn.batch_first or getattr(rnn, "proj_size", 0):
        raise ValueError("scan runs one-layer, unidirectional, batch-first GRUs and LSTMs without projection")
    B, L, _ = x.shape
    dev, dtype = x.device, rnn.weight_hh_l0.dtype
    lengths = torch.full((B,), L) if lengths is None else lengths.to("cpu", torch.long).clamp(0, L)
    if B == 0 or int(lengths.max()) == 0:
        raise ValueError("scan: no row has a step to run")
    width = (2 if lstm else 1) * rnn.hidden_size
    s0 = x.new_zeros(B, width, dtype=dtype) if s0 is None else s0.to(dtype)
    with torch.autocast(dev.type, enabled=False):
        # an empty row runs one step that nothing reads: its outputs are masked, its state is s0
        packed = pack_padded_sequence(x.to(dtype), lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
        size_t = packed.batch_sizes
        offset_t = torch.cumsum(size_t, 0) - size_t
        steps = (s0.index_select(0, packed.sorted_indices), rnn.weight_hh_l0)
        if lstm:
            gi = torch.addmm(rnn.bias_ih_l0 + rnn.bias_hh_l0, packed.data, rnn.weight_ih_l0.t())
            out = _LSTMScan.apply(gi, *steps, size_t.tolist(), offset_t.tolist())
        else:
            gi = torch.addmm(rnn.bias_ih_l0, packed.data, rnn.weight_ih_l0.t())
            out = _GRUScan.apply(gi, *steps, rnn.bias_hh_l0, size_t.tolist(), offset_t.tolist())
    rank = packed.unsorted_indices.cpu()  # row b runs as the rank[b]-th longest
    T, N = len(size_t), len(packed.data)
    # the final state: each row's last output (s0 for an empty row)
    last = out.index_select(0, (offset_t[(lengths - 1).clamp(min=0)] + rank).to(dev))
    last = torch.where((lengths > 0).to(dev)[:, None], last, s0)
    if at is None:  # every position, zeros past each row's end
        rows, times = torch.arange(B).repeat_interleave(T), torch.arange(T).repeat(B)
    else:
        rows, times = (a.to("cpu") for a in at)
    valid = times < lengths[rows]
    picked = out.index_select(0, (offset_t[times.clamp(0, T - 1)] + rank[rows]).clamp(max=N - 1).to(dev))
    if not valid.all():
        picked = torch.where(valid.to(dev)[:, None], picked, 0)
    return (picked.view(B, T, -1) if at is None else picked), last
