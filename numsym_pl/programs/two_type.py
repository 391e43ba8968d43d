"""Programs of two-type counting (``numsym_pl.tasks.two_type_counting``): ``B`` DA/DB interleaved
``T`` RA×n_a RB×n_b ``E``.

In the input phase every program outputs the task's next input (``follow_input``); after ``T`` it
answers RA's, then RB's, then ``E``. They differ in what they carry:

- ``two_counters``: ``count_a`` and ``count_b``, each response taking one off its own counter;
- ``total_and_first``: ``total`` (every object) and ``count_a``: RA while ``count_a`` > 0, then
  RB while ``total`` > 0, each response taking one off ``total`` (an RA also off ``count_a``); so
  overwriting ``count_a`` changes the number of RBs too, unlike under ``two_counters``;
- ``two_type_recount``: no carried state (Ctx-Distr's kind): ``left_a`` / ``left_b`` are recomputed
  from the whole context at every step, so overwriting one changes the next output only.
"""

from __future__ import annotations

import numpy as np

from numsym_pl.programs.base import PhasedProgram


class TwoTypeProgram(PhasedProgram):
    """Shared pieces: token classes, the phase, and the answer rule from two remaining counts."""

    reads = ("demo_a", "demo_b", "resp_a", "resp_b", "trigger", "eos", "pad", "inputs")

    @staticmethod
    def classify(token, phase, kinds):
        """(DA, DB read in the input phase, RA, RB read in the answer, is the trigger)."""
        inp, ans = phase == 0, phase == 1
        return ((token == kinds.demo_a) & inp, (token == kinds.demo_b) & inp, (token == kinds.resp_a) & ans,
                (token == kinds.resp_b) & ans, token == kinds.trigger)

    def answer(self, state, kinds):
        """RA while the first remaining count > 0, else RB while the second > 0, else E."""
        first, second = self.remaining(state)
        return np.where(first > 0, kinds.resp_a, np.where(second > 0, kinds.resp_b, kinds.eos))

    def trace(self, tokens, kinds, quantities):
        phase = self.phase_of(tokens, kinds)
        da, db, ra, rb, _ = (np.cumsum(x, 1) for x in self.classify(tokens, phase, kinds))
        return self.finish_trace(self.state_from_counts(phase, da, db, ra, rb), tokens, kinds)

    def remaining(self, state):
        raise NotImplementedError

    def state_from_counts(self, phase, da, db, ra, rb):
        raise NotImplementedError


class TwoCounters(TwoTypeProgram):
    name = "two_counters"
    variables = components = ("count_a", "count_b", "phase")

    def step(self, state, token, kinds):
        da, db, ra, rb, trig = self.classify(token, state["phase"], kinds)
        return {"count_a": state["count_a"] + da - ra, "count_b": state["count_b"] + db - rb,
                "phase": np.where(trig, 1, state["phase"])}

    def remaining(self, state):
        return state["count_a"], state["count_b"]

    def state_from_counts(self, phase, da, db, ra, rb):
        return {"count_a": da - ra, "count_b": db - rb, "phase": phase}


class TotalAndFirst(TwoTypeProgram):
    name = "total_and_first"
    variables = components = ("total", "count_a", "phase")

    def step(self, state, token, kinds):
        da, db, ra, rb, trig = self.classify(token, state["phase"], kinds)
        return {"total": state["total"] + da + db - ra - rb, "count_a": state["count_a"] + da - ra,
                "phase": np.where(trig, 1, state["phase"])}

    def remaining(self, state):
        return state["count_a"], state["total"]

    def state_from_counts(self, phase, da, db, ra, rb):
        return {"total": da + db - ra - rb, "count_a": da - ra, "phase": phase}


class TwoTypeRecount(TwoTypeProgram):
    name = "two_type_recount"
    markovian = False
    variables, components = ("left_a", "left_b"), ("left_a", "left_b", "context_a", "context_b", "phase")

    def step(self, state, token, kinds):
        da, db, ra, rb, trig = self.classify(token, state["phase"], kinds)
        ctx_a, ctx_b = state["context_a"] + da - ra, state["context_b"] + db - rb  # read off the context
        return {"left_a": ctx_a, "left_b": ctx_b, "context_a": ctx_a, "context_b": ctx_b,
                "phase": np.where(trig, 1, state["phase"])}

    def remaining(self, state):
        return state["left_a"], state["left_b"]

    def state_from_counts(self, phase, da, db, ra, rb):
        return {"left_a": da - ra, "left_b": db - rb, "context_a": da - ra, "context_b": db - rb, "phase": phase}
