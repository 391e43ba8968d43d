import numpy as np
import pytest

from numsym_pl.tasks import NumericEquivalence, TaskConfigError, VOCAB, response_target_mask

V = VOCAB


def reference_trial(task: NumericEquivalence, tokens: np.ndarray) -> tuple[int, int]:
    """Parse one trial by hand: returns (count, trigger index), asserting the grammar."""
    assert tokens[0] == V.BOS
    t = list(tokens).index(V.TRIG)
    demo = tokens[1:t]
    n = int(np.isin(demo, task.demo_tokens).sum())
    assert set(demo.tolist()) <= set(task.demo_tokens) | {V.VOID}
    assert demo[-1] != V.VOID
    assert (tokens[t + 1: t + 1 + n] == task.response_token).all()
    assert tokens[t + 1 + n] == V.EOS and (tokens[t + 2 + n:] == V.PAD).all()
    return n, t


@pytest.mark.parametrize("variant", ["multi", "single", "same"])
@pytest.mark.parametrize("p_void", [0.0, 0.3])
def test_trials_follow_the_grammar(variant, p_void):
    task = NumericEquivalence(variant=variant, p_void=p_void)
    rng = np.random.default_rng(0)
    counts = task.sample_counts("train", 500, rng)
    trials = task.trials(counts, rng)
    for b in range(len(trials)):
        n, t = reference_trial(task, trials.tokens[b])
        assert n == trials.count[b] == counts[b] and t == trials.trigger[b]
    if p_void == 0:
        assert (trials.trigger == trials.count + 1).all()
    else:  # voids are present at about the rate asked for
        voids = (trials.tokens == V.VOID).sum()
        rate = voids / (voids + trials.count.sum())
        assert abs(rate - p_void) < 0.03


def test_multi_object_uses_all_three_types_uniformly():
    task = NumericEquivalence("multi")
    trials = task.trials(np.full(2000, 20), np.random.default_rng(1))
    freq = np.bincount(trials.tokens.ravel(), minlength=V.size)[[V.D0, V.D1, V.D2]]
    assert np.allclose(freq / freq.sum(), 1 / 3, atol=0.01)


def test_sampling_is_deterministic_per_seed():
    task = NumericEquivalence("multi", p_void=0.2)
    a = task.trials(np.arange(1, 21), np.random.default_rng(7))
    b = task.trials(np.arange(1, 21), np.random.default_rng(7))
    c = task.trials(np.arange(1, 21), np.random.default_rng(8))
    assert (a.tokens == b.tokens).all() and not (a.tokens.shape == c.tokens.shape and (a.tokens == c.tokens).all())


def test_count_sets():
    task = NumericEquivalence()
    assert set(task.train_counts) == set(range(1, 21)) - {4, 9, 14, 17}
    rng = np.random.default_rng(0)
    assert set(task.sample_counts("heldout", 1000, rng)) == {4, 9, 14, 17}
    assert set(task.sample_counts("ood", 1000, rng)) == set(range(21, 31))


def test_response_target_mask_covers_responses_and_end():
    task = NumericEquivalence("single")
    trials = task.trials(np.array([3, 1]), np.random.default_rng(0))
    mask = response_target_mask(trials.trigger, trials.count, trials.tokens.shape[1])
    targets = trials.tokens[:, 1:]
    for b in range(2):
        assert targets[b][mask[b]].tolist() == [V.RESP] * trials.count[b] + [V.EOS]


@pytest.mark.parametrize("kwargs, field", [
    ({"min_count": 5, "max_count": 3}, "max_count"),
    ({"heldout_counts": (25,)}, "heldout_counts"),
    ({"p_void": 1.0}, "p_void"),
    ({"p_void": -0.1}, "p_void"),
    ({"variant": "many"}, "variant"),
    ({"ood_counts": (5,)}, "ood_counts"),
    ({"min_count": 0}, "min_count"),
])
def test_invalid_settings_name_their_field(kwargs, field):
    with pytest.raises(TaskConfigError, match=f"^{field}:"):
        NumericEquivalence(**kwargs)
