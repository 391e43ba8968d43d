import math

import numpy as np
import pytest
import torch

from numsym_pl.models.transformer import apply_rope, rope_angles
from numsym_pl.tasks import NumericEquivalence, VOCAB


def test_interface_shapes(small_net):
    tokens = torch.randint(0, VOCAB.size, (3, 11))
    assert small_net(tokens).shape == (3, 11, VOCAB.size)
    for site, (width, meaning, _) in small_net.sites.items():
        assert small_net.states(tokens, site).shape == (3, 11, width) and meaning


def test_unknown_site_is_named(small_net):
    with pytest.raises(ValueError, match="site: .*no site 'nowhere'"):
        small_net.states(torch.zeros(1, 3, dtype=torch.long), "nowhere")


def test_outputs_are_causal(small_net):
    """The output at t must not depend on any token after t."""
    torch.manual_seed(1)
    a = torch.randint(1, VOCAB.size, (4, 12))
    for t in range(11):
        b = a.clone()
        b[:, t + 1:] = torch.randint(1, VOCAB.size, (4, 11 - t))
        torch.testing.assert_close(small_net(a)[:, : t + 1], small_net(b)[:, : t + 1])


def test_lstm_state_site_is_h_and_c():
    from tests.conftest import SMALL_NETS

    net = SMALL_NETS["lstm"]()
    tokens = torch.randint(0, VOCAB.size, (2, 7))
    s = net.states(tokens, "state")
    for t in range(7):  # compare with the LSTM's own final state on each prefix
        _, (h, c) = net.rnn(net.embed(tokens[:, : t + 1]))
        torch.testing.assert_close(s[:, t], torch.cat([h[0], c[0]], -1))


def test_rope_matches_complex_reference():
    """Rotate-half RoPE == multiplying (x_i + i x_{i+d/2}) by exp(i pos theta_i)."""
    torch.manual_seed(0)
    L, d, base = 9, 8, 10000.0
    x = torch.randn(2, L, d)
    cos, sin = rope_angles(L, d, base)
    got = apply_rope(x, cos, sin)
    theta = torch.tensor([base ** (-2 * i / d) for i in range(d // 2)])
    z = torch.complex(x[..., : d // 2], x[..., d // 2:])
    rot = z * torch.polar(torch.ones(L, d // 2), torch.arange(L)[:, None] * theta[None])
    torch.testing.assert_close(got, torch.cat([rot.real, rot.imag], -1))
    assert math.isclose(theta[0].item(), 1.0)


def test_rope_scores_depend_on_relative_position_only():
    torch.manual_seed(0)
    d = 16
    q, k = torch.randn(d), torch.randn(d)
    cos, sin = rope_angles(40, d)

    def score(i, j):
        return (apply_rope(q, cos[i], sin[i]) @ apply_rope(k, cos[j], sin[j])).item()

    assert math.isclose(score(5, 2), score(30, 27), rel_tol=1e-4)
    assert not math.isclose(score(5, 2), score(5, 3), rel_tol=1e-3)


def test_nope_has_no_positional_parameters_or_rotation():
    from tests.conftest import SMALL_NETS

    net = SMALL_NETS["nope"]()
    # with identical tokens, a NoPE model's first-layer attention is uniform: outputs depend on the
    # token multiset, so repeating the same token gives the same output at every position
    out = net(torch.full((1, 6), VOCAB.D0))
    torch.testing.assert_close(out[0, 0], out[0, 5])


def test_forward_with_out_mask_returns_the_masked_logits(small_net):
    tokens = torch.as_tensor(NumericEquivalence("multi").trials(np.arange(1, 9), np.random.default_rng(0)).tokens)
    mask = tokens != VOCAB.PAD
    torch.testing.assert_close(small_net(tokens, out_mask=mask), small_net(tokens)[mask])
