"""The harder families (two-type counting, arithmetic, comparison) and their competing programs:
traces against the per-token reference, predictions of real trials, counterfactual labels against
an independent re-derivation written here, distinguishability, and named errors."""

import numpy as np
import pytest

from numsym_pl.das.alignment import Alignment
from numsym_pl.das.pairs.distinguish import INDISTINGUISHABLE, distinguishability
from numsym_pl.das.pairs.counterfactual import make_pairs
from numsym_pl.errors import ConfigError
from numsym_pl.programs import TokenKinds, get_program, next_inputs, reference_trace
from numsym_pl.tasks import Arithmetic, Comparison, NumericEquivalence, TaskConfigError, TwoTypeCounting

FAMILIES = {
    "two_type": (lambda p_void=0.2: TwoTypeCounting(p_void=p_void),
                 ("two_counters", "total_and_first", "two_type_recount")),
    "arithmetic": (lambda p_void=0.2: Arithmetic(p_void=p_void), ("accumulator", "registers", "arithmetic_recount")),
    "comparison": (lambda p_void=0.2: Comparison(p_void=p_void), ("difference", "two_counts")),
}
CASES = [(f, p) for f, (_, programs) in FAMILIES.items() for p in programs]


def trials_of(task, n, seed=0):
    """Trials of every split, concatenated (padded to one width)."""
    rng = np.random.default_rng(seed)
    parts = [task.sample(s, n, rng) for s in ("train", "heldout", "ood")]
    L = max(p.tokens.shape[1] for p in parts)
    pad = lambda x: np.pad(x, ((0, 0), (0, L - x.shape[1])))
    return (np.concatenate([pad(p.tokens) for p in parts]),
            np.concatenate([np.pad(p.scored, ((0, 0), (0, L - 1 - p.scored.shape[1]))) for p in parts]))


def stepped(program, tokens, kinds):
    """The per-token reference ``step`` run position by position over a batch of trials."""
    state, states, preds = program.init((len(tokens),)), [], []
    ended = np.zeros(len(tokens), bool)
    nxt = next_inputs(tokens, kinds.pad)
    for t in range(tokens.shape[1]):
        state = program.step(state, tokens[:, t], kinds)
        ended |= tokens[:, t] == kinds.eos
        states.append(state)
        pred = program.predict(state, {"next_input": nxt[:, t]}, kinds)
        preds.append(np.where(ended | (tokens[:, t] == kinds.pad), kinds.pad, pred))
    return {c: np.stack([s[c] for s in states], 1) for c in program.components}, np.stack(preds, 1)


@pytest.mark.parametrize("family,name", CASES)
def test_trace_equals_the_per_token_reference_and_predicts_real_trials(family, name):
    task = FAMILIES[family][0]()
    program, kinds = get_program(name), TokenKinds.of(task)
    tokens, scored = trials_of(task, 1000)  # 3,000 trials: train, held-out, OOD, with voids
    state, pred = program.trace(tokens, kinds, {})
    ref_state, ref_pred = stepped(program, tokens, kinds)
    for c in program.components:
        np.testing.assert_array_equal(state[c], ref_state[c], err_msg=c)
    np.testing.assert_array_equal(pred, ref_pred)
    for b in range(5):  # the scalar path of reference_trace, one trial at a time
        states, preds = reference_trace(program, tokens[b], kinds, {})
        np.testing.assert_array_equal(np.array(preds), pred[b])
    # every deterministic answer token of real trials is what the program predicts
    assert (pred[:, :-1] == tokens[:, 1:])[scored].all()


# ---- the counterfactual labels, re-derived here from token names, pair by pair --------------------------

def names(task, row):
    return [task.vocab.names[i] for i in row if i != 0]


def two_type_label(program, variable, src, i_s, tgt, i_t):
    def counts(seq):  # (DA - RA, DB - RB, seen T) after reading seq
        a = b = 0
        phase = False
        for tok in seq:
            if tok == "T":
                phase = True
            a += (tok == "DA" and not phase) - (tok == "RA" and phase)
            b += (tok == "DB" and not phase) - (tok == "RB" and phase)
        return a, b, phase

    sa, sb, _ = counts(src[: i_s + 1])
    ta, tb, phase = counts(tgt[: i_t + 1])
    out = list(tgt[: i_t + 1])
    if program == "two_type_recount":  # only the next output sees the overwritten value
        if phase:
            out.append("RA" if sa > 0 else "RB" if tb > 0 else "E")
            while out[-1] != "E":
                a, b, _ = counts(out)
                out.append("RA" if a > 0 else "RB" if b > 0 else "E")
            return out
        return list(tgt)
    total = ta + tb
    a, b = (sa, tb) if variable == "count_a" else (ta, sb)
    # total_and_first: the total stays the target's own; only count_a is overwritten
    rest = [] if phase else tgt[i_t + 1: tgt.index("T") + 1]
    for tok in rest:
        a += tok == "DA"
        b += tok == "DB"
        total += tok in ("DA", "DB")
    out += rest
    if program == "two_counters":
        return out + ["RA"] * max(a, 0) + ["RB"] * max(b, 0) + ["E"]
    n_ra = max(a, 0)
    return out + ["RA"] * n_ra + ["RB"] * max(total - n_ra, 0) + ["E"]


def arithmetic_label(program, variable, src, i_s, tgt, i_t):
    def state(seq):  # (a, b, op, given R's, seen T)
        a = b = given = 0
        op, phase = None, False
        for tok in seq:
            if tok == "T":
                phase = True
            elif tok in ("PLUS", "MINUS") and not phase:
                op = tok
            elif tok == "D" and not phase:
                a, b = (a + 1, b) if op is None else (a, b + 1)
            elif tok == "R" and phase:
                given += 1
        return a, b, op, given, phase

    def value(a, b, op, given):
        return a - b - given if op == "MINUS" else a + b - given

    sa, sb, sop, sgiven, _ = state(src[: i_s + 1])
    ta, tb, top, tgiven, phase = state(tgt[: i_t + 1])
    out = list(tgt[: i_t + 1])
    rest = [] if phase else tgt[i_t + 1: tgt.index("T") + 1]
    if program == "accumulator":  # one running value: the source's, then the target's remaining operands
        v, op = value(sa, sb, sop, sgiven), top
        for tok in rest:
            op = tok if tok in ("PLUS", "MINUS") else op
            v += (tok == "D") * (-1 if op == "MINUS" else 1)
        return out + rest + ["R"] * max(v, 0) + ["E"]  # the answers already given are inside the value
    if program == "registers":
        a, b, op = (sa if variable == "a" else ta), (sb if variable == "b" else tb), top
        for tok in rest:
            op = tok if tok in ("PLUS", "MINUS") else op
            if tok == "D":
                a, b = (a + 1, b) if op is None else (a, b + 1)
        return out + rest + ["R"] * max(value(a, b, op, 0) - tgiven, 0) + ["E"]
    # arithmetic_recount: the next output only
    if not phase:
        return list(tgt)
    out.append("R" if value(sa, sb, sop, sgiven) > 0 else "E")
    while out[-1] != "E":
        a, b, op, given, _ = state(out)
        out.append("R" if value(a, b, op, given) > 0 else "E")
    return out


def comparison_label(program, variable, src, i_s, tgt, i_t):
    def counts(seq):
        a = b = 0
        group = phase = answered = False
        for tok in seq:
            if tok == "T":
                phase = True
            elif tok == "S" and not phase:
                group = True
            elif tok == "D" and not phase:
                a, b = (a, b + 1) if group else (a + 1, b)
            elif tok in ("GT", "LT", "EQ") and phase:
                answered = True
        return a, b, group, phase, answered

    sa, sb, *_ = counts(src[: i_s + 1])
    ta, tb, group, phase, answered = counts(tgt[: i_t + 1])
    out = list(tgt[: i_t + 1])
    if answered:
        return out + ["E"]
    d = {"diff": lambda: sa - sb, "a": lambda: sa - tb, "b": lambda: ta - sb}[variable]()
    rest = [] if phase else tgt[i_t + 1: tgt.index("T") + 1]
    for tok in rest:
        group = group or tok == "S"
        d += (tok == "D") * (-1 if group else 1)
    return out + rest + ["GT" if d > 0 else "LT" if d < 0 else "EQ", "E"]


LABELS = {"two_type": two_type_label, "arithmetic": arithmetic_label, "comparison": comparison_label}
LABEL_CASES = [("two_type", "two_counters", "count_a"), ("two_type", "two_counters", "count_b"),
               ("two_type", "total_and_first", "count_a"), ("two_type", "two_type_recount", "left_a"),
               ("arithmetic", "accumulator", "value"), ("arithmetic", "registers", "a"),
               ("arithmetic", "registers", "b"), ("arithmetic", "arithmetic_recount", "left"),
               ("comparison", "difference", "diff"), ("comparison", "two_counts", "a"),
               ("comparison", "two_counts", "b")]


@pytest.mark.parametrize("family,program,variable", LABEL_CASES)
def test_counterfactual_labels_match_an_independent_derivation(family, program, variable):
    task = FAMILIES[family][0]()
    pairs = make_pairs(task, get_program(program), [variable], 600, seed=3)
    # make_pairs draws its source and target trials first, from the seed: the same draw here gives
    # the whole target trial (the counterfactual keeps only its prefix and remaining inputs)
    rng = np.random.default_rng(3)
    src_trials, tgt_trials = task.sample("train", 600, rng), task.sample("train", 600, rng)
    for b in range(len(pairs)):
        src, tgt = names(task, src_trials.tokens[b]), names(task, tgt_trials.tokens[b])
        i_s, i_t = int(pairs.source_pos[b]), int(pairs.target_pos[b])
        assert names(task, pairs.source[b].tolist()) == src
        expected = LABELS[family](program, variable, src, i_s, tgt, i_t)
        assert names(task, pairs.cf[b].tolist()) == expected, (src, i_s, tgt, i_t)


# ---- distinguishability of the competing hypotheses ------------------------------------------------------

COMPETING = [("two_type", "two_counters.count_a", "total_and_first.count_a"),
             ("two_type", "two_counters.count_a", "two_type_recount.left_a"),
             ("two_type", "total_and_first.count_a", "two_type_recount.left_a"),
             ("arithmetic", "accumulator.value", "registers.a"),
             ("arithmetic", "accumulator.value", "arithmetic_recount.left"),
             ("arithmetic", "registers.a", "arithmetic_recount.left"),
             ("comparison", "difference.diff", "two_counts.a")]
#: documented as indistinguishable: the joint swaps carry the same information (total = a + b,
#: diff = a - b is all the answer reads), so their labels agree on every pair
INDISTINGUISHABLE_PAIRS = [("two_type", "two_counters.count_a+count_b", "total_and_first.total+count_a"),
                           ("comparison", "difference.diff", "two_counts.a+b")]


def hypothesis(text):
    program, variables = text.split(".")
    return Alignment(program=program, variables=variables)


@pytest.mark.parametrize("family,first,second", COMPETING)
def test_competing_programs_are_distinguishable_on_the_default_pairs(family, first, second):
    d = distinguishability(FAMILIES[family][0](), hypothesis(first), hypothesis(second), n=1000, seed=0)
    assert d["differ"] >= INDISTINGUISHABLE and d["distinguishable"], d


@pytest.mark.parametrize("family,first,second", INDISTINGUISHABLE_PAIRS)
def test_joint_swaps_that_carry_the_same_information_are_reported_indistinguishable(family, first, second):
    d = distinguishability(FAMILIES[family][0](), hypothesis(first), hypothesis(second), n=1000, seed=0)
    assert d["differ"] == 0.0 and not d["distinguishable"]


def test_a_count_a_swap_changes_the_number_of_rbs_under_total_and_first_only():
    """Overwriting count_a leaves the number of RBs at the target's n_b under
    two_counters, and moves it under total_and_first."""
    task = TwoTypeCounting()
    v = task.vocab
    rng = np.random.default_rng(1)
    _, tgt = task.sample("train", 1000, rng), task.sample("train", 1000, rng)  # the pairs' target trials
    for program, moves in (("two_counters", False), ("total_and_first", True)):
        pairs = make_pairs(task, get_program(program), ["count_a"], 1000, seed=1)
        after = np.arange(pairs.cf.shape[1])[None, :] > pairs.target_pos[:, None].numpy()
        n_rb = ((pairs.cf.numpy() == v.RB) & after).sum(1)
        before = ((tgt.tokens[:, : pairs.cf.shape[1]] == v.RB) & ~after[:, : tgt.tokens.shape[1]]).sum(1)
        moved = n_rb + before != tgt.quantities["n_b"]
        assert bool(moved.any()) is moves, program


# ---- named errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("make,field", [
    (lambda: TwoTypeCounting(max_count=0), "max_count"),
    (lambda: TwoTypeCounting(ood_max=5), "ood_max"),
    (lambda: TwoTypeCounting(max_count=1, heldout=[[0, 1], [1, 0], [1, 1]]), "heldout"),
    (lambda: TwoTypeCounting(heldout=[[11, 3]]), "heldout"),
    (lambda: TwoTypeCounting(p_void=1.0), "p_void"),
    (lambda: Arithmetic(ops=["times"]), "ops"),
    (lambda: Arithmetic(max_operand=0), "max_operand"),
    (lambda: Comparison(min_count=3, max_count=3), "max_count"),
    (lambda: Comparison(ood_max=3), "ood_max"),
])
def test_bad_settings_fail_by_name(make, field):
    with pytest.raises(TaskConfigError, match=f"^{field}"):
        make()


def test_a_program_that_does_not_fit_the_task_or_lacks_the_variable_fails_by_name():
    with pytest.raises(ConfigError, match="program: 'up_down' reads"):
        make_pairs(TwoTypeCounting(), get_program("up_down"), ["count"], 10, seed=0)
    with pytest.raises(ConfigError, match="program: 'two_counters' reads"):
        make_pairs(NumericEquivalence(), get_program("two_counters"), ["count_a"], 10, seed=0)
    with pytest.raises(ConfigError, match="variables: program 'accumulator' has no variable"):
        make_pairs(Arithmetic(), get_program("accumulator"), ["a"], 10, seed=0)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_splits_keep_held_out_combinations_and_ood_values_apart(family):
    task = FAMILIES[family][0]()
    rng = np.random.default_rng(0)
    q = task.quantities
    key = lambda trials: {tuple(int(trials.quantities[k][b]) for k in q) for b in range(len(trials))}
    train, held, ood = (key(task.sample(s, 3000, rng)) for s in ("train", "heldout", "ood"))
    assert train and held and ood and not (train & held) and not (train & ood) and not (held & ood)
    assert len(task.heldout) >= 0.08 * (len(task.pool("train")) + len(task.heldout))
