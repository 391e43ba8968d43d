"""The featurizers: each is orthogonal or invertible where it claims to be, swaps exactly what a
hand computation says, and the learned ones do what they are for (the low-rank map is the full
rotation restricted to its columns; Boundless recovers a planted width; RevNet brings its control)."""

import re

import pytest
import torch

from numsym_pl.das.interventions import Interchange
from numsym_pl.das import Alignment, SearchSettings, SubspaceSwap, run_alignment
from numsym_pl.das.featurizers import FEATURIZERS
from numsym_pl.errors import ConfigError
from numsym_pl.tasks import VOCAB
from tests.test_planted import TASK, PlantedCounter

D, K = 12, 3
torch.manual_seed(0)
T, S = torch.randn(7, D), torch.randn(7, D)


def _perturbed(swap):
    """The featurizer moved off its start (non-zero couplings, a trained-looking rotation)."""
    with torch.no_grad():
        for name, p in swap.named_parameters():
            if "original" not in name and "boundary" not in name:
                p.add_(0.3 * torch.randn_like(p))
    return swap


@pytest.mark.parametrize("name", ["rotation", "low_rank", "pca_rotation", "boundless"])
def test_linear_featurizers_have_orthonormal_columns(name):
    swap = _perturbed(SubspaceSwap(D, K, featurizer=name, seed=1))
    W = swap.weight
    assert W.shape == ((D, K) if name == "low_rank" else (D, D))
    assert torch.allclose(W.T @ W, torch.eye(W.shape[1]), atol=1e-5)


def test_revnet_is_invertible_and_not_linear():
    f = _perturbed(SubspaceSwap(D, K, featurizer="revnet", seed=1)).rotation
    h = torch.randn(50, D)
    assert torch.allclose(f.decode(f.encode(h)), h, atol=1e-5)
    assert not torch.allclose(f.encode(2 * h), 2 * f.encode(h), atol=1e-3)


def _swap_first(target, source, columns):
    """The golden swap, by hand: in the basis ``columns`` [d, d], take the first K coordinates from the source."""
    zt, zs = target @ columns, source @ columns
    return torch.cat([zs[:, :K], zt[:, K:]], 1) @ columns.T


def test_rotation_and_low_rank_swap_exactly_the_planted_coordinates():
    perm = torch.eye(D)[:, torch.randperm(D, generator=torch.Generator().manual_seed(3))]
    for name in ("rotation", "low_rank"):
        swap = SubspaceSwap(D, K, featurizer=name)
        with torch.no_grad():
            swap.rotation.weight = perm if name == "rotation" else perm[:, :K]
        out = swap(T, S)
        cols = perm[:, :K].argmax(0)  # the neurons the first K feature coordinates are
        expect = T.clone()
        expect[:, cols] = S[:, cols]
        assert torch.allclose(out, expect, atol=1e-6), name


def test_the_linear_swap_equals_the_swap_in_the_full_feature_basis():
    swap = _perturbed(SubspaceSwap(D, K, n_blocks=2, seed=2))
    W = swap.weight.detach()
    assert torch.allclose(swap(T, S), torch.cat([(S @ W)[:, :2 * K], (T @ W)[:, 2 * K:]], 1) @ W.T, atol=1e-5)
    blocks = torch.tensor([[True, False]] * 7)
    z = torch.cat([(S @ W)[:, :K], (T @ W)[:, K:]], 1)
    assert torch.allclose(swap(T, S, blocks), z @ W.T, atol=1e-5)


def test_the_low_rank_map_is_the_full_rotation_restricted_to_its_columns():
    full = _perturbed(SubspaceSwap(D, K, featurizer="rotation", seed=4))
    low = SubspaceSwap(D, K, featurizer="low_rank")
    with torch.no_grad():
        low.rotation.weight = full.weight.detach()[:, :K]
    assert torch.allclose(low(T, S), full(T, S), atol=1e-5)
    # started from the same seed they start at the same map
    assert torch.allclose(SubspaceSwap(D, K, featurizer="low_rank", seed=5)(T, S), SubspaceSwap(D, K, seed=5)(T, S),
                          atol=1e-5)


def test_pca_rotation_starts_at_the_directions_of_largest_variance():
    scale = 2.0 ** torch.arange(D, dtype=torch.float32)  # neuron j varies with sd 2^j
    states = torch.randn(4000, D, generator=torch.Generator().manual_seed(0)) * scale
    swap = SubspaceSwap(D, K, featurizer="pca_rotation")
    swap.prepare(states)
    top = swap.weight.detach()[:, :K].abs().argmax(0)
    assert top.tolist() == [D - 1, D - 2, D - 3]
    V = torch.linalg.svd(states - states.mean(0), full_matrices=False).Vh.T[:, :K]  # the sample's axes, by SVD
    assert torch.allclose(swap(T, S), T + ((S - T) @ V) @ V.T, atol=1e-4)


def test_boundless_swaps_its_hard_width_when_scored_and_a_soft_mask_when_trained():
    swap = SubspaceSwap(D, K, featurizer="boundless")
    with torch.no_grad():
        swap.rotation.weight = torch.eye(D)
        swap.rotation.boundary.fill_(torch.logit(torch.tensor(4.2 / (D - 1))))  # w = 5.2
    assert swap.rotation.learned_width == 5
    with torch.no_grad():
        out = swap(T, S)
    assert torch.allclose(out, torch.cat([S[:, :5], T[:, 5:]], 1), atol=1e-6)
    swap.anneal(0, 100)
    m = torch.sigmoid((5.2 - torch.arange(D) - 0.5) / 0.5)
    assert torch.allclose(swap(T, S), T + (S - T) * m, atol=1e-5)
    assert swap.anneal(50, 100)  # the width trains its whole schedule: never stopped early
    assert float(swap.rotation.current_temperature) == pytest.approx(0.5 * 0.2 ** 0.5)  # geometric, halfway
    swap.anneal(100, 100)
    assert float(swap.rotation.current_temperature) == pytest.approx(0.1)
    assert swap.report()["width"] == 5


def test_revnet_golden_swap():
    swap = _perturbed(SubspaceSwap(D, K, featurizer="revnet", seed=6))
    f = swap.rotation
    zt, zs = f.encode(T), f.encode(S)
    assert torch.allclose(swap(T, S), f.decode(torch.cat([zs[:, :K], zt[:, K:]], 1)), atol=1e-5)
    with torch.no_grad():  # with its couplings at zero it is the plain swap in its rotation's basis
        for c in f.couplings:
            c[2].weight.zero_()
            c[2].bias.zero_()
    assert torch.allclose(swap(T, S), _swap_first(T, S, f.turn.weight.detach()), atol=1e-5)


def _tests_naming(featurizer: str) -> list[str]:
    """The tests of this module's default suite (not ``slow``) that name ``featurizer`` in their own name or in a
    parametrize value, as a whole name (``pca_rotation`` does not name ``rotation``)."""
    names = sorted({*FEATURIZERS, featurizer}, key=len, reverse=True)  # at each place the longest name is the one
    pattern = re.compile(r"(?<![a-z0-9])(" + "|".join(map(re.escape, names)) + r")(?![a-z0-9])")
    found = []
    for test, fn in globals().items():
        marks = getattr(fn, "pytestmark", [])
        if not test.startswith("test_") or test == "test_every_featurizer_is_tested_here" or \
                any(m.name == "slow" for m in marks):
            continue
        values = [str(v) for m in marks if m.name == "parametrize" for v in m.args[1]]
        if any(featurizer in pattern.findall(text) for text in (test, *values)):
            found.append(test)
    return found


def test_every_featurizer_is_tested_here():
    """Each featurizer numsym_pl registers has a test of its own here: named after it, or parametrized over it."""
    built_in = {name for name, cls in FEATURIZERS.items() if cls.__module__.startswith("numsym_pl.")}
    assert {"rotation", "low_rank", "pca_rotation", "boundless", "revnet"} <= built_in  # the README's
    untested = sorted(name for name in built_in if not _tests_naming(name))
    assert not untested, f"no test in {__name__} is named after or parametrized over {untested}"
    assert _tests_naming("householder") == []  # a name no test here names is found untested


def test_bad_featurizer_settings_are_named_errors():
    with pytest.raises(ConfigError, match="one variable at a time"):
        SubspaceSwap(D, K, n_blocks=2, featurizer="boundless")
    with pytest.raises(ConfigError, match="temperature"):
        FEATURIZERS["boundless"](D, K, temperature=(0.1, 1.0))
    with pytest.raises(ConfigError, match="revnet"):
        SubspaceSwap(1, 1, featurizer="revnet")


@pytest.mark.slow  # 800 DAS steps (~40-60 s on two cores); run with -m slow
def test_boundless_recovers_the_width_of_a_planted_subspace():
    """The planted counter keeps its count in one direction of an 8-wide state (phase in another,
    filler in the rest): started at width 4, Boundless must shrink to exactly that direction and
    keep its IIA. (A count planted in a plane, read back non-linearly, defeats plain DAS's
    optimiser too, so it cannot test the width.)"""
    settings = SearchSettings(n_train=2000, n_val=300, n_test=500, max_steps=800, batch_size=128, eval_every=100,
                              lr=0.01, progress=False, random_seeds=2)
    net = PlantedCounter(VOCAB.size, hidden_size=8)
    result, swap = run_alignment(net, TASK, Alignment("up_down", "count", "state",
                                                      Interchange(4, featurizer="boundless")), settings)
    assert result.steps == 800  # a width is learned over the whole schedule
    assert result.fit["featurizer"]["width"] == 1 and swap.rotation.learned_width == 1
    assert result.iia >= 0.99


def test_revnet_always_brings_its_untrained_net_control(tmp_path):
    from numsym_pl.analysis.das_table import format_table
    from numsym_pl.das.posthoc import align
    from numsym_pl.lit_module import NextTokenLM

    lm = NextTokenLM(PlantedCounter(VOCAB.size, hidden_size=8))
    settings = SearchSettings(n_train=500, n_val=100, n_test=200, max_steps=40, eval_every=20, progress=False,
                              random_seeds=2, null=False)
    assert not settings.controls
    record, swap = align(lm.net, TASK, Alignment("up_down", "count", "state", Interchange(1, featurizer="revnet")),
                         settings)
    untrained = record["controls"]["untrained"]
    assert 0 <= untrained["iia"] <= 1 and untrained["steps"] >= 1
    table = format_table(record)
    assert "revnet" in table and "untrained net: IIA, all pairs" in table


def test_one_seed_is_one_start_for_every_featurizer():
    for name in ("rotation", "low_rank", "pca_rotation", "boundless", "revnet"):
        a, b = (SubspaceSwap(D, K, featurizer=name, seed=7).state_dict() for _ in range(2))
        assert all(torch.equal(a[k], b[k]) for k in a), name  # low_rank's square base included


def test_building_a_featurizer_leaves_the_global_random_stream_alone():
    """Checks build swaps before a fit (the DAS callback's check at fit start): they must not move the
    training's random stream."""
    for name in ("rotation", "low_rank", "pca_rotation", "boundless", "revnet"):
        torch.manual_seed(11)
        SubspaceSwap(D, K, featurizer=name, seed=3)
        after = torch.rand(1)
        torch.manual_seed(11)
        assert torch.equal(after, torch.rand(1)), name


def test_the_rotation_columns_are_its_matrix_exponential_columns_in_value_and_gradient():
    """expm_columns (a Taylor series on r columns) is matrix_exp's first r columns, in value and
    gradient, to 1e-10 in float64; Rotation.columns(r) is weight[:, :r] to 1e-5 in float32, takes
    the full exponential where that costs less, and the swap uses it."""
    from numsym_pl.das.featurizers import Rotation, expm_columns

    torch.manual_seed(0)
    X = torch.randn(96, 96, dtype=torch.float64) * 0.05
    G = torch.randn(96, 8, dtype=torch.float64)

    def value_and_grad(fn):
        x = X.clone().requires_grad_()
        A = x.tril() - x.tril().T
        y = fn(A)
        (y * G).sum().backward()
        return y.detach(), x.grad

    steps = max(1, int(torch.ceil((X.tril() - X.tril().T).norm() / 2)))
    assert steps > 1  # the scaling is exercised
    ref, g_ref = value_and_grad(lambda A: torch.matrix_exp(A)[:, :8])
    got, g = value_and_grad(lambda A: expm_columns(A, 8, steps))
    torch.testing.assert_close(got, ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(g, g_ref, atol=1e-10, rtol=0)

    rot = Rotation(96, seed=3)
    with torch.no_grad():
        rot.parametrizations.weight.original.copy_(X.float())
    for r in (4, 16, 95):  # 95 of 96: the d x d exponential
        torch.testing.assert_close(rot.columns(r), rot.weight[:, :r], atol=1e-5, rtol=0)
    swap = SubspaceSwap(96, 4)
    calls = []
    swap.rotation.columns = lambda r: calls.append(r) or Rotation.columns(swap.rotation, r)
    swap(torch.randn(3, 96), torch.randn(3, 96))
    assert calls == [4]
