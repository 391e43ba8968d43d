"""The counterfactual labels and loss masks, re-derived pair by pair in plain Python, without the
program code: what each program says the net should answer after the interchange (docs/method.md#programs), for
demo-phase and response-phase targets of every program and variable on every task variant.

The re-derivation reads a trial as the method page writes it (docs/method.md#tasks) (``B``, the demo phase,
``T``, ``R`` × n, ``E``), scans the source up to ``i_s`` and the target up to ``i_t`` for the program's variables,
writes the source's into the target's state, and runs the program's rule forward to ``E``. It
breaks when the label code does: flipping the sign of a response token's step in ``UpDown.step``,
or scoring the continuation from the trial's first ``T`` instead of the intervened phase, fails it.
"""

import pytest

from numsym_pl.das.pairs.counterfactual import make_pairs
from numsym_pl.programs import PROGRAMS
from numsym_pl.tasks import NumericEquivalence


def _scan(tokens, upto, roles):
    """(demo tokens read in the demo phase, response tokens read in the response phase, phase)
    after reading ``tokens[0 .. upto]``; T opens the response phase."""
    demo, resp, phase = 0, 0, 0
    for tok in tokens[: upto + 1]:
        if tok == roles["trigger"]:
            phase = 1
        elif phase == 0 and tok in roles["demo"]:
            demo += 1
        elif phase == 1 and tok == roles["resp"]:
            resp += 1
    return demo, resp, phase


def _variables(program, demo, resp, phase):
    if program == "up_down":
        return {"count": demo - resp, "phase": phase}
    if program == "up_up":
        return {"demo_count": demo, "resp_count": resp, "phase": phase}
    return {"balance": resp - demo, "context_sum": resp - demo, "phase": phase}  # ctx_distr


def _continuation(program, state, n, roles):
    """[(token class, scored)] the program emits from ``state`` until E: ``demo`` for any demo
    token; a prediction made in the response phase is a scored answer, except Up-Up's E once its
    response count has passed its demo count."""
    state, out = dict(state), []
    while True:
        phase = state["phase"]
        if program == "up_down":
            respond, more_demo = state["count"] > 0, state["count"] < n
        elif program == "up_up":
            respond, more_demo = state["resp_count"] < state["demo_count"], state["demo_count"] < n
        else:
            respond, more_demo = state["balance"] < 0, -state["balance"] < n
        tok = ("R" if respond else "E") if phase == 1 else ("demo" if more_demo else "T")
        overshot = program == "up_up" and state["resp_count"] > state["demo_count"]
        out.append((tok, phase == 1 and not overshot))
        if tok == "E":
            return out
        if program == "ctx_distr":
            state["context_sum"] += {"demo": -1, "R": 1, "T": 0}[tok]
            state["balance"] = state["context_sum"]  # recomputed from the context at every step, T included
        if tok == "T":
            state["phase"] = 1
        elif program == "up_down":
            state["count"] += 1 if tok == "demo" else -1
        elif program == "up_up":
            state["demo_count" if tok == "demo" else "resp_count"] += 1


CASES = [("up_down", ["count"]), ("up_down", ["phase"]), ("up_down", ["count", "phase"]),
         ("up_up", ["demo_count"]), ("up_up", ["resp_count"]), ("up_up", ["phase"]), ("ctx_distr", ["balance"])]
VARIANTS = [("single", 0.0), ("same", 0.0), ("multi", 0.0), ("multi", 0.2)]


@pytest.mark.parametrize("variant, p_void", VARIANTS)
@pytest.mark.parametrize("program, variables", CASES)
def test_labels_and_masks_match_an_independent_derivation(program, variables, variant, p_void):
    task = NumericEquivalence(variant, p_void=p_void)
    roles = {k: (tuple(v) if isinstance(v, (tuple, list)) else v) for k, v in task.token_roles.items()}
    symbol = {"R": roles["resp"], "E": roles["eos"], "T": roles["trigger"]}
    p = make_pairs(task, PROGRAMS[program], variables, 300, seed=5, keep_unscored=True)
    src, cf, mask = p.source.numpy(), p.cf.numpy(), p.loss_mask.numpy()
    phases = set()
    for b in range(len(p)):
        i_s, i_t, n = int(p.source_pos[b]), int(p.target_pos[b]), int(p.target_quantity[b])
        state = _variables(program, *_scan(cf[b], i_t, roles))  # cf up to i_t is the target's prefix
        given = _variables(program, *_scan(src[b], i_s, roles))
        state.update({v: given[v] for v in variables})
        if program == "ctx_distr":  # the context sum stays the target's: only the next prediction changes
            state["context_sum"] = _variables(program, *_scan(cf[b], i_t, roles))["context_sum"]
        phases.add(_scan(cf[b], i_t, roles)[2])
        expected = _continuation(program, state, n, roles)
        got = cf[b, i_t + 1: i_t + 1 + len(expected)]
        assert len(got) == len(expected), b
        for k, (tok, scored) in enumerate(expected):
            assert (got[k] in roles["demo"]) if tok == "demo" else got[k] == symbol[tok], (b, k)
            assert mask[b, i_t + k] == scored, (b, k)
        assert (cf[b, i_t + 1 + len(expected):] == roles["pad"]).all()
        assert not mask[b, :i_t].any() and not mask[b, i_t + len(expected):].any()
    assert phases == {0, 1}  # both demo-phase and response-phase targets were checked
