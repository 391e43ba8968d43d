"""Golden tests of the intervention, forward_patched against the per-step reference, and pairs."""

import numpy as np
import pytest
import torch

from numsym_pl.das.interventions import Interchange
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.pairs.counterfactual import make_pairs
from numsym_pl.programs import PROGRAMS, TokenKinds
from numsym_pl.tasks import NumericEquivalence, VOCAB
from tests.conftest import SMALL_NETS


def test_rotated_swap_equals_a_swap_done_by_hand():
    torch.manual_seed(0)
    swap = SubspaceSwap(8, subspace=3, n_blocks=1, kind="rotation", seed=3)
    W = swap.weight.detach()
    assert torch.allclose(W @ W.T, torch.eye(8), atol=1e-5)
    t, s = torch.randn(5, 8), torch.randn(5, 8)
    zt, zs = t @ W, s @ W
    z = torch.cat([zs[:, :3], zt[:, 3:]], 1)
    torch.testing.assert_close(swap(t, s), z @ W.T)


def test_two_blocks_and_block_selection():
    swap = SubspaceSwap(8, subspace=2, n_blocks=2, kind="random", seed=1)
    W = swap.weight
    t, s = torch.randn(4, 8), torch.randn(4, 8)
    zt, zs = t @ W, s @ W
    only_second = torch.cat([zt[:, :2], zs[:, 2:4], zt[:, 4:]], 1) @ W.T
    torch.testing.assert_close(swap(t, s, blocks=torch.tensor([False, True])), only_second)
    both = torch.cat([zs[:, :4], zt[:, 4:]], 1) @ W.T
    torch.testing.assert_close(swap(t, s), both)


def test_baselines():
    t, s = torch.randn(4, 6), torch.randn(4, 6)
    ident = SubspaceSwap(6, 2, kind="identity")
    torch.testing.assert_close(ident(t, s), torch.cat([s[:, :2], t[:, 2:]], 1))
    torch.testing.assert_close(SubspaceSwap(6, 2, kind="full")(t, s), s)
    assert not SubspaceSwap(6, 2, kind="random").weight.requires_grad
    assert sum(p.requires_grad for p in SubspaceSwap(6, 2).parameters()) == 1


def test_rotation_stays_fp32_under_bf16_autocast():
    swap = SubspaceSwap(8, 2)
    t, s = torch.randn(3, 8).bfloat16(), torch.randn(3, 8).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = swap(t, s)
    assert out.dtype == torch.bfloat16 and swap.weight.dtype == torch.float32


@pytest.mark.parametrize("kwargs, field", [({"subspace": 9}, "subspace"), ({"subspace": 5, "n_blocks": 2}, "subspace"),
                                           ({"kind": "mirror"}, "intervention")])
def test_bad_swap_settings_are_named(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        SubspaceSwap(8, **{"subspace": 2, **kwargs})


@pytest.mark.parametrize("arch", sorted(SMALL_NETS))
def test_forward_patched_matches_the_per_step_reference(arch):
    torch.manual_seed(0)
    net = SMALL_NETS[arch]().double()
    tokens = torch.randint(1, VOCAB.size, (6, 15))
    positions = torch.tensor([1, 4, 14, 7, 0, 9])
    for site, (width, *_) in net.sites.items():
        shift = torch.randn(6, width, dtype=torch.float64)
        patch = lambda h: h * 0.5 + shift
        got = net.forward_patched(tokens, site, positions, patch)
        # the generic path built on the hook points, and for transformers an independent one through
        # torch's own forward hooks on each block
        torch.testing.assert_close(got, net.forward_patched_by_hooks(tokens, site, positions, patch), atol=1e-5,
                                   rtol=1e-5)
        if arch in ("rope", "nope") and site.startswith("resid."):  # the sites inside a block: tests/test_sites.py
            ref = _transformer_hook_reference(net, tokens, site, positions, patch)
            torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
        masked = torch.rand(6, 15) < 0.3
        masked[2] = False  # a row that asks for no logit
        torch.testing.assert_close(net.forward_patched(tokens, site, positions, patch, out_mask=masked)[masked],
                                   got[masked], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(net.states(tokens, site), net.states_by_hooks(tokens, site), atol=1e-6, rtol=1e-6)
        nothing = torch.zeros_like(masked)
        assert not net.forward_patched(tokens, site, positions, patch, out_mask=nothing).any()
        clean = net(tokens)
        for b, p in enumerate(positions):  # before the patch nothing changes
            torch.testing.assert_close(got[b, :p], clean[b, :p])


@pytest.mark.parametrize("arch", ["gru", "lstm"])
def test_forward_patched_out_mask_and_its_gradient_match_the_per_step_reference(arch):
    """A mask with positions before, at and after each row's patch: the logits and the gradient
    reaching the patch equal the per-step loop's."""
    torch.manual_seed(0)
    net = SMALL_NETS[arch]().double().requires_grad_(False)
    tokens = torch.randint(1, VOCAB.size, (6, 15))
    positions = torch.tensor([1, 4, 14, 7, 0, 9])
    mask = torch.rand(6, 15) < 0.4
    mask[1, 4] = mask[2, 3] = True
    grads = []
    for forward in (net.forward_patched, net.forward_patched_by_hooks):
        shift = torch.zeros(6, net.site_width("state"), dtype=torch.float64, requires_grad=True)
        kwargs = {"out_mask": mask} if forward == net.forward_patched else {}
        logits = forward(tokens, "state", positions, lambda h, shift=shift: h * 0.5 + shift, **kwargs)[mask]
        (logits * torch.linspace(-1, 1, logits.numel(), dtype=torch.float64).view_as(logits)).sum().backward()
        grads.append((logits.detach(), shift.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def _transformer_hook_reference(net, tokens, site, positions, patch):
    k = int(site.split(".")[1])
    b = torch.arange(len(tokens))

    def replace(x):
        x = x.clone()
        x[b, positions] = patch(x[b, positions])
        return x

    if k == 0:
        handle = net.embed.register_forward_hook(lambda m, i, o: replace(o))
    else:
        handle = net.blocks[k - 1].register_forward_hook(lambda m, i, o: replace(o))
    try:
        return net(tokens)
    finally:
        handle.remove()


@pytest.mark.parametrize("arch", ["gru", "lstm"])
def test_forward_patched_float32_within_1e5(arch):
    torch.manual_seed(0)
    net = SMALL_NETS[arch]()
    tokens = torch.randint(1, VOCAB.size, (32, 40))
    positions = torch.randint(0, 40, (32,))
    shift = torch.randn(32, net.site_width("state"))
    patch = lambda h: h.flip(-1) * 0.7 + shift  # row-wise, like a swap with per-row sources
    torch.testing.assert_close(net.forward_patched(tokens, "state", positions, patch),
                               net.forward_patched_by_hooks(tokens, "state", positions, patch), atol=1e-5, rtol=1e-5)


def test_gradients_reach_the_patch_only():
    net = SMALL_NETS["gru"]().requires_grad_(False)
    swap = SubspaceSwap(16, 4)
    tokens = torch.randint(1, VOCAB.size, (4, 10))
    src = torch.randn(4, 16)
    out = net.forward_patched(tokens, "state", torch.tensor([2, 3, 4, 5]), lambda h: swap(h, src))
    out.sum().backward()
    assert all(p.grad is not None for p in swap.parameters())


@pytest.mark.parametrize("program, variables", [("up_down", ["count"]), ("up_down", ["count", "phase"]),
                                                ("up_up", ["demo_count"]), ("up_up", ["resp_count"]),
                                                ("ctx_distr", ["balance"]), ("up_down", ["phase"])])
@pytest.mark.parametrize("variant", ["multi", "same"])
def test_pairs_are_consistent(program, variables, variant):
    task = NumericEquivalence(variant, p_void=0.2 if variant == "multi" else 0.0)
    p = make_pairs(task, PROGRAMS[program], variables, 500, seed=1)
    kinds = TokenKinds.of(task)
    cf, i_t = p.cf.numpy(), p.target_pos.numpy()
    # positions are demo-phase or response inputs, never P, B, T, E
    for tok, pos in [(p.source.numpy(), p.source_pos.numpy()), (cf, i_t)]:
        at = tok[np.arange(len(pos)), pos]
        assert np.isin(at, list(kinds.demo) + [kinds.resp, VOCAB.VOID]).all()
    # scored targets are R or E at or after i_t, and every counterfactual ends with a scored E
    t = np.arange(cf.shape[1] - 1)[None]
    mask = p.loss_mask.numpy()
    assert not (mask & (t < i_t[:, None])).any()
    assert np.isin(cf[:, 1:][mask], [kinds.resp, VOCAB.EOS]).all()
    assert ((cf[:, 1:] == VOCAB.EOS) & mask).sum(1).tolist() == [1] * len(cf)
    # reproducible
    q = make_pairs(task, PROGRAMS[program], variables, 500, seed=1)
    assert torch.equal(p.cf, q.cf) and torch.equal(p.source, q.source)


def test_up_down_pairs_respond_with_the_source_count_in_the_response_phase():
    task = NumericEquivalence("single")
    p = make_pairs(task, PROGRAMS["up_down"], ["count"], 400, seed=2)
    cf = p.cf.numpy()
    for b in range(len(cf)):
        i = int(p.target_pos[b])
        if (cf[b, : i + 1] == VOCAB.TRIG).any():  # intervened in the response phase
            rest = cf[b, i + 1:]
            n_resp = int((rest == VOCAB.RESP).sum())
            assert n_resp == int(p.source_value[b]) and rest[n_resp] == VOCAB.EOS


@pytest.mark.parametrize("arch", sorted(SMALL_NETS))
def test_forward_patched_with_out_mask_gives_the_masked_logits(arch):
    torch.manual_seed(0)
    net = SMALL_NETS[arch]().double()
    p = make_pairs(NumericEquivalence("multi", p_void=0.2), PROGRAMS["up_down"], ["count"], 64, seed=4)
    site = next(iter(net.sites))
    shift = torch.randn(64, net.site_width(site), dtype=torch.float64)
    patch = lambda h: h * 0.5 + shift
    full = net.forward_patched(p.cf[:, :-1], site, p.target_pos, patch)
    masked = net.forward_patched(p.cf[:, :-1], site, p.target_pos, patch, out_mask=p.loss_mask)
    torch.testing.assert_close(masked[p.loss_mask], full[p.loss_mask], atol=1e-6, rtol=1e-6)
    assert (masked[~p.loss_mask] == 0).all()


@pytest.mark.parametrize("arch", sorted(SMALL_NETS))
def test_forward_patched_from_the_clean_cache_is_the_same_run(arch):
    torch.manual_seed(0)
    net = SMALL_NETS[arch]().double()
    p = make_pairs(NumericEquivalence("multi"), PROGRAMS["up_down"], ["count"], 64, seed=5)
    # the deepest site with a cache: the last residual stream, the recurrent state (LSTM: its c half)
    site = [s for s in net.sites if not s.startswith(("attn.", "mlp.", "head."))][-1]
    shift = torch.randn(64, net.site_width(site), dtype=torch.float64)
    patch = lambda h: h * 0.5 + shift
    cache = net.patch_cache(p.cf[:, :-1], site, p.target_pos)
    assert cache is not None and len(cache) == 64
    direct = net.forward_patched(p.cf[:, :-1], site, p.target_pos, patch, out_mask=p.loss_mask)
    cached = net.forward_patched(p.cf[:, :-1], site, p.target_pos, patch, out_mask=p.loss_mask, cache=cache)
    torch.testing.assert_close(cached, direct, atol=1e-9, rtol=1e-9)


def test_pairs_intervene_on_a_chosen_subset_of_variables():
    task, prog = NumericEquivalence("multi"), PROGRAMS["up_down"]
    only_count = make_pairs(task, prog, ["count", "phase"], 200, seed=9, subsets=0)
    count = make_pairs(task, prog, ["count"], 200, seed=9)
    assert torch.equal(only_count.cf, count.cf) and only_count.blocks[:, 0].all() and not only_count.blocks[:, 1].any()
    mixed = make_pairs(task, prog, ["count", "phase"], 300, seed=9, subsets="random")
    assert mixed.blocks.any(1).all()
    assert {tuple(r) for r in mixed.blocks.tolist()} == {(True, False), (False, True), (True, True)}
    assert make_pairs(task, prog, ["count", "phase"], 50, seed=9).blocks.all()


@pytest.mark.parametrize("orthogonal_map", ["matrix_exp", "cayley"])
def test_learned_rotation_stays_orthogonal_and_round_trips(orthogonal_map, tmp_path):
    from numsym_pl.das.posthoc import load_rotation, save_result

    swap = SubspaceSwap(12, 3, 2, "rotation", seed=1, orthogonal_map=orthogonal_map)
    opt = torch.optim.Adam(swap.parameters(), lr=0.1)
    for _ in range(5):
        loss = swap(torch.randn(4, 12), torch.randn(4, 12)).square().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    W = swap.weight.detach()
    torch.testing.assert_close(W @ W.T, torch.eye(12), atol=1e-5, rtol=0)
    save_result({"iia": 0.5}, tmp_path, swap)
    torch.testing.assert_close(load_rotation(tmp_path / "rotation.pt").weight.detach(), W)


@pytest.mark.parametrize("variant", ["multi", "same"])
def test_effective_pairs_are_those_whose_count_changes(variant):
    """Up-Down `count` alone: a pair tests something exactly when the source's count at i_s differs
    from the target's at i_t (re-derived here from the target prefix, not from the pair code)."""
    task, prog = NumericEquivalence(variant), PROGRAMS["up_down"]
    p = make_pairs(task, prog, ["count"], 2000, seed=11)
    cf = p.cf.numpy()
    state, _ = prog.trace(cf, TokenKinds.of(task), {"count": p.target_quantity.numpy()})
    target_count = state["count"][np.arange(len(p)), p.target_pos.numpy()]  # the prefix up to i_t is the target's
    assert (p.effective.numpy() == (p.source_value.numpy() != target_count)).all()
    assert 0.03 < 1 - p.effective.float().mean() < 0.2  # the no-op share the field noticed (about 8 %)


def test_results_carry_the_no_op_floor():
    from numsym_pl.das import Alignment, SearchSettings, run_alignment

    torch.manual_seed(0)
    settings = SearchSettings(n_train=128, n_val=64, n_test=200, max_steps=4, batch_size=32, eval_every=2,
                              progress=False)
    result, _ = run_alignment(SMALL_NETS["gru"](), NumericEquivalence(),
                              Alignment("up_down", "count", "state", Interchange(4)), settings)
    record = result.as_dict()
    assert 0 < record["n_effective"] < record["n"] == 200
    assert 0 <= record["iia_none"] <= 1 and 0 <= record["iia_effective"] <= 1


def test_pairs_without_the_floor_are_the_same_pairs():
    task, prog = NumericEquivalence("multi", p_void=0.2), PROGRAMS["up_down"]
    with_floor, without = (make_pairs(task, prog, ["count", "phase"], 300, seed=3, subsets="random", floor=f)
                           for f in (True, False))
    assert without.effective is None and with_floor.effective is not None
    for name in ("source", "source_pos", "cf", "target_pos", "loss_mask", "source_value", "blocks"):
        assert torch.equal(getattr(with_floor, name), getattr(without, name)), name
    assert without[:5].effective is None and len(without[:5]) == 5
