import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numsym_pl.errors import ConfigError
from numsym_pl.programs import PROGRAMS, TokenKinds, get_program, reference_trace, rollout
from numsym_pl.tasks import NumericEquivalence, VOCAB, response_target_mask

def _fits(program, task) -> bool:
    try:
        program.check_task(task)
    except ConfigError:
        return False
    return True


#: the registered programs of numeric equivalence (the harder families' are in test_beyond_counting.py)
COUNTING = sorted(name for name, program in PROGRAMS.items() if _fits(program, NumericEquivalence()))
TASKS = [NumericEquivalence("multi"), NumericEquivalence("single"), NumericEquivalence("same"),
         NumericEquivalence("multi", p_void=0.3), NumericEquivalence("same", p_void=0.2)]


def _trials(task, n, seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 31, n)  # training, held-out and OOD counts alike
    return task.trials(counts, rng)


@pytest.mark.parametrize("name", COUNTING)
@pytest.mark.parametrize("task", TASKS, ids=lambda t: f"{t.variant}-void{t.p_void}")
def test_vectorised_trace_equals_reference_steps(name, task):
    program, kinds = PROGRAMS[name], TokenKinds.of(task)
    trials = _trials(task, 300, seed=hash((name, task.variant, task.p_void)) % 2**32)
    state, pred = program.trace(trials.tokens, kinds, trials.quantities)
    for b in range(len(trials)):
        ref_states, ref_preds = reference_trace(program, trials.tokens[b], kinds, {"count": int(trials.count[b])})
        for comp in program.components:
            assert state[comp][b].tolist() == [s[comp] for s in ref_states], (comp, b)
        assert pred[b].tolist() == ref_preds


@settings(max_examples=200, deadline=None)
@given(tokens=st.lists(st.sampled_from(range(VOCAB.size)), min_size=1, max_size=40), count=st.integers(0, 40),
       variant=st.sampled_from(["multi", "single", "same"]), name=st.sampled_from(COUNTING))
def test_trace_equals_reference_on_arbitrary_streams(tokens, count, variant, name):
    """Also on streams that break the grammar (repeated T, stray E, ...)."""
    program, kinds = PROGRAMS[name], TokenKinds.of(NumericEquivalence(variant))
    arr = np.asarray([tokens])
    state, pred = program.trace(arr, kinds, {"count": np.asarray([count])})
    ref_states, ref_preds = reference_trace(program, arr[0], kinds, {"count": count})
    for comp in program.components:
        assert state[comp][0].tolist() == [s[comp] for s in ref_states]
    assert pred[0].tolist() == ref_preds


@pytest.mark.parametrize("name", COUNTING)
@pytest.mark.parametrize("task", TASKS, ids=lambda t: f"{t.variant}-void{t.p_void}")
def test_every_program_predicts_every_response_token(name, task):
    trials = _trials(task, 2000, seed=3)
    _, pred = PROGRAMS[name].trace(trials.tokens, TokenKinds.of(task), trials.quantities)
    mask = response_target_mask(trials.trigger, trials.count, trials.tokens.shape[1])
    assert (pred[:, :-1][mask] == trials.tokens[:, 1:][mask]).all()


@pytest.mark.parametrize("name", COUNTING)
@pytest.mark.parametrize("variant", ["multi", "single", "same"])
def test_rollout_from_the_target_own_state_reproduces_the_target(name, variant):
    """A counterfactual whose source state equals the target state changes nothing."""
    task, program = NumericEquivalence(variant), PROGRAMS[name]
    kinds = TokenKinds.of(task)
    trials = _trials(task, 500, seed=5)
    rng = np.random.default_rng(0)
    state, _ = program.trace(trials.tokens, kinds, trials.quantities)
    b = np.arange(len(trials))
    i_t = rng.integers(1, trials.trigger + trials.count + 1)  # any demo/T/response position
    cont, _ = rollout(program, {k: v[b, i_t] for k, v in state.items()}, trials.quantities, kinds, rng, 70)
    demo = np.isin(trials.tokens, kinds.demo) & (np.arange(trials.tokens.shape[1]) < trials.trigger[:, None])
    as_class = lambda x: np.where(np.isin(x, kinds.demo) & (x != kinds.resp), -1, x)  # demo types are random
    for j in range(len(trials)):
        rest = trials.tokens[j, i_t[j] + 1: trials.trigger[j] + trials.count[j] + 2]
        got = cont[j][cont[j] != VOCAB.PAD]
        if variant == "same":  # D is demo and response: compare demo-phase length and the rest exactly
            assert len(got) == len(rest) and (got[-trials.count[j] - 2:] == rest[-trials.count[j] - 2:]).all()
        else:
            assert as_class(got).tolist() == as_class(rest).tolist()
    assert demo.any()


def test_up_down_counterfactual_by_hand():
    """Target B D D D T R (count 3, at the first R: count 2); source count 5 -> R R R R R E."""
    task, program = NumericEquivalence("single"), PROGRAMS["up_down"]
    kinds = TokenKinds.of(task)
    state = {"count": np.array([5]), "phase": np.array([1])}
    cont, _ = rollout(program, state, {"count": np.array([3])}, kinds, np.random.default_rng(0), 20)
    assert cont[0].tolist() == [VOCAB.RESP] * 5 + [VOCAB.EOS]
    # in the demo phase with count 1 of 4, a source count of 2 means two more demo tokens, T, 4 R, E
    state = {"count": np.array([2]), "phase": np.array([0])}
    cont, _ = rollout(program, state, {"count": np.array([4])}, kinds, np.random.default_rng(0), 20)
    assert cont[0].tolist() == [VOCAB.D0] * 2 + [VOCAB.TRIG] + [VOCAB.RESP] * 4 + [VOCAB.EOS]


def test_ctx_distr_overwrite_changes_the_next_token_only():
    task, program = NumericEquivalence("single"), PROGRAMS["ctx_distr"]
    kinds = TokenKinds.of(task)
    # after B D D D T R: context balance -2; overwritten to -5 -> next R, then the context says -1: R, E
    state = {"balance": np.array([-5]), "context_sum": np.array([-2]), "phase": np.array([1])}
    cont, _ = rollout(program, state, {"count": np.array([3])}, kinds, np.random.default_rng(0), 20)
    assert cont[0].tolist() == [VOCAB.RESP, VOCAB.RESP, VOCAB.EOS]
    state = {"balance": np.array([0]), "context_sum": np.array([-2]), "phase": np.array([1])}
    cont, _ = rollout(program, state, {"count": np.array([3])}, kinds, np.random.default_rng(0), 20)
    assert cont[0].tolist() == [VOCAB.EOS]


def test_unknown_program_and_variable_are_named():
    with pytest.raises(ValueError, match="^program:"):
        get_program("down_up")
    with pytest.raises(ValueError, match="^variables:.*'cnt'"):
        PROGRAMS["up_down"].check_variables(["cnt"])
