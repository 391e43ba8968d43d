"""The sites inside a transformer block (attn.k, mlp.k, head.k.h) and the LSTM's h and c: each is
the activation its docs name (checked against torch forward hooks on the modules), patches there
steer the net, and DAS runs on them."""

import numpy as np
import pytest
import torch

from numsym_pl.das.interventions import Interchange
from numsym_pl.das import Alignment, SearchSettings, run_alignment
from numsym_pl.tasks import VOCAB, NumericEquivalence
from tests.conftest import SMALL_NETS

TOKENS = torch.tensor([[1, 6, 7, 6, 3, 4, 4, 4, 2], [1, 8, 5, 7, 3, 4, 4, 2, 0]])
POS = torch.tensor([2, 5])


def _rope():
    torch.manual_seed(0)
    return SMALL_NETS["rope"]().eval()  # d 16, 2 blocks, 2 heads


def test_transformer_sites_are_listed_with_their_widths():
    sites = _rope().sites
    assert {s: sites[s].width for s in ("resid.0", "resid.2", "attn.1", "attn.2", "mlp.1", "head.1.0", "head.2.1")} == \
        {"resid.0": 16, "resid.2": 16, "attn.1": 16, "attn.2": 16, "mlp.1": 64, "head.1.0": 8, "head.2.1": 8}
    assert "head.1.2" not in sites and "attn.3" not in sites


def _module_output(net, module, tokens, fn=None):
    """A module's output in a plain forward (optionally replaced by fn(output))."""
    got = []

    def hook(mod, args, out):
        got.append(out)
        return None if fn is None else fn(out)

    handle = module.register_forward_hook(hook)
    try:
        logits = net(tokens)
    finally:
        handle.remove()
    return got[0], logits


@pytest.mark.parametrize("site, module", [("attn.1", lambda n: n.blocks[0].out), ("attn.2", lambda n: n.blocks[1].out),
                                          ("mlp.1", lambda n: n.blocks[0].ffn[1]),
                                          ("mlp.2", lambda n: n.blocks[1].ffn[1])])
def test_attn_and_mlp_sites_are_those_modules_outputs(site, module):
    net = _rope()
    expected, _ = _module_output(net, module(net), TOKENS)
    torch.testing.assert_close(net.states(TOKENS, site), expected)
    # a patch at the site is the same as changing that module's output at the position
    patch = lambda h: h * 0 + 0.5
    b = torch.arange(len(TOKENS))
    by_site = net.forward_patched(TOKENS, site, POS, patch)

    def at_pos(out):
        out = out.clone()
        out[b, POS] = 0.5
        return out
    _, by_torch = _module_output(net, module(net), TOKENS, at_pos)
    torch.testing.assert_close(by_site, by_torch)
    assert not torch.allclose(by_site, net(TOKENS))


@pytest.mark.parametrize("site", ["attn.1", "attn.2", "mlp.1", "mlp.2"])
def test_the_inner_fast_path_with_its_cache_and_logit_mask_equals_the_hook_path(site):
    """attn.k / mlp.k patches reuse a clean cache and rerun only block k at the patch position and
    the blocks above; with the cache, with the logits of some positions only, and with a learned
    (differentiable) patch they equal the generic hook path to 1e-5, gradients included."""
    net = _rope()
    w = net.site_width(site)
    torch.manual_seed(1)
    A = torch.randn(w, w, requires_grad=True)
    patch = lambda h: h + 0.1 * h @ A
    out_mask = torch.zeros(TOKENS.shape, dtype=torch.bool)
    out_mask[0, 3:6], out_mask[1, 5:7] = True, True
    cache = net.patch_cache(TOKENS, site, POS)
    assert cache is not None
    ref = net.forward_patched_by_hooks(TOKENS, site, POS, patch)
    (g_ref,) = torch.autograd.grad(ref[out_mask].square().sum(), A)
    for kwargs in ({}, {"cache": cache}, {"cache": cache, "out_mask": out_mask}, {"out_mask": out_mask}):
        fast = net.forward_patched(TOKENS, site, POS, patch, **kwargs)
        torch.testing.assert_close(fast[out_mask], ref[out_mask], atol=1e-5, rtol=1e-5)
        if "out_mask" not in kwargs:
            torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
        (g,) = torch.autograd.grad(fast[out_mask].square().sum(), A)
        torch.testing.assert_close(g, g_ref, atol=1e-5, rtol=1e-4)


def test_a_head_site_is_its_slice_of_the_attention_output():
    net = _rope()
    pre = []
    handle = net.blocks[1].out.register_forward_pre_hook(lambda mod, args: pre.append(args[0]))
    net(TOKENS)
    handle.remove()
    heads = torch.cat([net.states(TOKENS, "head.2.0"), net.states(TOKENS, "head.2.1")], -1)
    torch.testing.assert_close(heads, pre[0])
    zeroed = net.forward_patched(TOKENS, "head.2.1", POS, lambda h: h * 0)

    def zero_head(mod, args):
        x = args[0].clone()
        x[torch.arange(2), POS, 8:] = 0
        return (x,)
    handle = net.blocks[1].out.register_forward_pre_hook(zero_head)
    expected = net(TOKENS)
    handle.remove()
    torch.testing.assert_close(zeroed, expected)


def test_lstm_h_and_c_are_the_halves_of_its_state_on_the_fast_and_the_hook_path():
    torch.manual_seed(0)
    net = SMALL_NETS["lstm"]().eval()  # hidden 8: state [h; c] is 16-d
    state = net.states(TOKENS, "state")
    torch.testing.assert_close(net.states(TOKENS, "h"), state[..., :8])
    torch.testing.assert_close(net.states(TOKENS, "c"), state[..., 8:])
    assert net.states_by_hooks(TOKENS, "c").shape == (2, 9, 8)
    torch.testing.assert_close(net.states_by_hooks(TOKENS, "c"), state[..., 8:])
    for site, part in (("h", slice(0, 8)), ("c", slice(8, 16))):
        patch = lambda x: x * 0 + 0.3
        fast = net.forward_patched(TOKENS, site, POS, patch)
        hooked = net.forward_patched_by_hooks(TOKENS, site, POS, patch)
        torch.testing.assert_close(fast, hooked, atol=1e-5, rtol=1e-5)

        def whole(s, part=part):
            s = s.clone()
            s[:, part] = 0.3
            return s
        torch.testing.assert_close(fast, net.forward_patched(TOKENS, "state", POS, whole), atol=1e-6, rtol=1e-6)


SIGN = {VOCAB.D0: 1.0, VOCAB.D1: 1.0, VOCAB.D2: 1.0, VOCAB.RESP: -1.0}  # what each token adds to the count
COUNTS = {"max_count": 10, "heldout_counts": (4,), "ood_counts": (12,)}  # short trials


@torch.no_grad()
def _planted_context_counter(arch: str):
    """A small transformer (``SMALL_NETS[arch]``) set by hand to do Ctx-Distr exactly. Block 1's attention, its
    queries and keys zero, averages each token's sign (+1 demo, -1 response) over the prefix into coordinate 2 of
    attn.1, (#D - #R) / (t + 1) (head 0's first channel before the projection); its MLP's first unit fires when that
    is a count of one or more and writes coordinate 3; the head answers R from it, E without it; block 2 adds
    nothing. Coordinates 4.. hold a fixed +-1 pattern (a steady spread for the LayerNorms), coordinate 1 nothing
    (what the MLP and the head read against, so that the LayerNorms' means cancel). A position's answer is its own
    attn.1, mlp.1 and head.1.0, which nothing later reads: a swap there changes that answer alone, as Ctx-Distr's
    ``balance`` does."""
    net = SMALL_NETS[arch]().eval()
    for p in net.parameters():
        p.zero_()
    for m in net.modules():
        if isinstance(m, torch.nn.LayerNorm):
            m.weight.fill_(1.0)
    d = net.d_model
    net.embed.weight[:, 4:] = torch.tensor([1.0, -1.0]).repeat((d - 4) // 2)
    for token, sign in SIGN.items():
        net.embed.weight[token, 0] = sign
    block = net.blocks[0]
    block.qkv.weight[2 * d, 0] = 1.0  # the value's channel 0: the token's sign
    block.out.weight[2, 0] = 30.0
    up, _, down, _ = block.ffn
    up.weight[0, 2], up.weight[0, 1], up.bias[0] = 20.0, -20.0, -10.0
    down.weight[3, 0] = 1.0
    net.head.bias.fill_(-100.0)
    net.head.bias[VOCAB.EOS] = 0.0
    net.head.weight[VOCAB.RESP, 3], net.head.weight[VOCAB.RESP, 1], net.head.bias[VOCAB.RESP] = 10.0, -10.0, -5.0
    return net


@torch.no_grad()
def _planted_lstm_counter():
    """A small LSTM (``SMALL_NETS["lstm"]``) set by hand to do Up-Down exactly: its input, forget and output gates
    open, ``c[0]`` adds each token's sign (the count), and the decoder answers R while ``h[0] = tanh(count)`` says
    one or more, E after. Everything after a step reads the count from ``c``."""
    net = SMALL_NETS["lstm"]().eval()
    for p in net.parameters():
        p.zero_()
    H = net.hidden_size
    for token, sign in SIGN.items():
        net.embed.weight[token, 0] = sign
    gates = net.rnn.bias_ih_l0  # PyTorch's order: input, forget, cell (g), output
    gates[:2 * H], gates[3 * H:] = 30.0, 30.0
    net.rnn.weight_ih_l0[2 * H, 0] = 30.0  # g[0] = tanh(30 * sign) = sign
    first, last = net.decoder[1], net.decoder[3]
    first.weight[0, 0], first.bias[0] = 20.0, -7.0
    last.bias.fill_(-100.0)
    last.bias[VOCAB.EOS] = 0.0
    last.weight[VOCAB.RESP, 0], last.bias[VOCAB.RESP] = 2.0, -5.0
    return net


class _DemoPhaseTargets(NumericEquivalence):
    """Multi-Object whose interchanges target demo-phase inputs only, where no answer is scored. A swap of the
    LSTM's ``c`` at i_t reaches the answers from step i_t + 1 on, not its ``h`` at i_t: at a response input i_t the
    answer there would still read the unswapped count."""

    def trials(self, *args, **kwargs):
        trials = super().trials(*args, **kwargs)
        trials.intervenable &= np.arange(trials.tokens.shape[1])[None, :] < trials.trigger[:, None]
        return trials


@pytest.mark.parametrize("arch, site", [("rope", "attn.1"), ("rope", "mlp.1"), ("nope", "head.1.0"), ("lstm", "c")])
def test_das_runs_at_the_new_sites(arch, site):
    """On a net planted with the program's variable at the site (a transformer: Ctx-Distr's ``balance`` at each
    position's attn.1 / mlp.1 / head.1.0; the LSTM: Up-Down's ``count`` in c), DAS swapping the site's whole state
    at i_t gets every test pair right, the effective ones included; the net not intervened on gets exactly the
    no-op pairs right. A swap at another site or position, or from another source position, misses effective pairs."""
    if arch == "lstm":  # the count carries on in c
        net, task = _planted_lstm_counter(), _DemoPhaseTargets("multi", **COUNTS)
        program, variable = "up_down", "count"
    else:  # the balance is each position's own
        net, task = _planted_context_counter(arch), NumericEquivalence("multi", **COUNTS)
        program, variable = "ctx_distr", "balance"
    width = net.site_width(site)
    settings = SearchSettings(n_train=128, n_val=64, n_test=64, max_steps=2, batch_size=32, eval_every=2,
                              progress=False, random_seeds=2)
    result, swap = run_alignment(net, task, Alignment(program, variable, site, Interchange(width)), settings)
    assert result.alignment["site"] == site and swap.width == width
    assert result.iia == 1.0 and result.iia_full_swap == 1.0
    assert result.n_effective >= 5 and result.iia_effective == 1.0
    assert result.iia_none == pytest.approx(1 - result.n_effective / result.n)


@pytest.mark.parametrize("arch", ["rope", "nope"])
def test_the_last_block_with_clean_keys_gives_the_same_output_and_gradient(arch):
    """forward_at with the unpatched stream (keys and values from it without autograd but at the
    patched position, queries at the asked positions, projection and FFN on the valid slots only)
    equals forward_at over the whole patched stream, in value and in the patch's gradient."""
    torch.manual_seed(0)
    net = SMALL_NETS[arch]().eval()
    block = net.blocks[-1]
    clean = net.states(TOKENS, "resid.1")
    value = torch.randn(2, 16, requires_grad=True)
    b = torch.arange(2)
    hit = torch.zeros(TOKENS.shape, dtype=torch.bool)
    hit[b, POS] = True
    patched = lambda: torch.where(hit[..., None], value[:, None, :].expand_as(clean), clean)
    qpos = torch.tensor([[2, 4, 8], [5, 6, 6]])  # row 0 asks at its patch and after; row 1 pads its last
    valid = torch.tensor([[True, True, True], [True, True, False]])
    ref = block.forward_at(patched(), qpos)[valid]
    got = block.forward_at(patched(), qpos, valid, clean, POS)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    (g_ref,) = torch.autograd.grad(ref.square().sum(), value)
    (g,) = torch.autograd.grad(got.square().sum(), value)
    torch.testing.assert_close(g, g_ref, atol=1e-5, rtol=1e-5)
    assert g.abs().sum() > 0
