"""Programs of comparison (``numsym_pl.tasks.comparison``): ``B D×a S D×b T X E``.

In the input phase every program outputs the task's next input (``follow_input``); after ``T`` it
answers ``X`` (GT, LT or EQ), then ``E``. ``group`` (0 before ``S``, 1 after) and ``answered``
are bookkeeping:

- ``difference``: one variable ``diff``, +1 per token of the first group, -1 per token of the
  second; ``X`` is its sign;
- ``two_counts``: ``a`` and ``b`` counted apart and compared at ``T``.

Overwriting ``diff`` and overwriting ``a`` and ``b`` together give the same labels (a - b is all
the answer reads): that pair of alignments cannot be told apart; ``a`` or ``b`` alone can.
"""

from __future__ import annotations

import numpy as np

from numsym_pl.programs.base import PhasedProgram


class ComparisonProgram(PhasedProgram):
    reads = ("demo", "sep", "gt", "lt", "eq", "trigger", "eos", "pad", "inputs")

    @staticmethod
    def classify(token, state, kinds):
        """(token of the first group, of the second, the separator, an answer read, the trigger)."""
        inp = state["phase"] == 0
        d = (token == kinds.demo) & inp
        answer = np.isin(token, (kinds.gt, kinds.lt, kinds.eq)) & (state["phase"] == 1)
        return (d & (state["group"] == 0), d & (state["group"] == 1), (token == kinds.sep) & inp, answer,
                token == kinds.trigger)

    def bookkeeping(self, state, sep, answer, trig):
        return {"group": np.where(sep, 1, state["group"]), "phase": np.where(trig, 1, state["phase"]),
                "answered": np.where(answer, 1, state["answered"])}

    def answer(self, state, kinds):
        d = self.difference(state)
        x = np.where(d > 0, kinds.gt, np.where(d < 0, kinds.lt, kinds.eq))
        return np.where(state["answered"] == 1, kinds.eos, x)

    def trace(self, tokens, kinds, quantities):
        phase = self.phase_of(tokens, kinds)
        group = (np.cumsum(tokens == kinds.sep, 1) > 0).astype(np.int64)  # S is only read in the input phase
        d = (tokens == kinds.demo) & (phase == 0)
        answered = (np.cumsum(np.isin(tokens, (kinds.gt, kinds.lt, kinds.eq)) & (phase == 1), 1) > 0).astype(np.int64)
        first, second = np.cumsum(d & (group == 0), 1), np.cumsum(d & (group == 1), 1)
        return self.finish_trace({**self.counts(first, second), "group": group, "phase": phase, "answered": answered},
                                 tokens, kinds)

    def difference(self, state):
        raise NotImplementedError

    def counts(self, first, second):
        raise NotImplementedError


class Difference(ComparisonProgram):
    name = "difference"
    variables, components = ("diff",), ("diff", "group", "phase", "answered")

    def step(self, state, token, kinds):
        first, second, sep, answer, trig = self.classify(token, state, kinds)
        return {"diff": state["diff"] + first - second, **self.bookkeeping(state, sep, answer, trig)}

    def difference(self, state):
        return state["diff"]

    def counts(self, first, second):
        return {"diff": first - second}


class TwoCounts(ComparisonProgram):
    name = "two_counts"
    variables, components = ("a", "b"), ("a", "b", "group", "phase", "answered")

    def step(self, state, token, kinds):
        first, second, sep, answer, trig = self.classify(token, state, kinds)
        return {"a": state["a"] + first, "b": state["b"] + second, **self.bookkeeping(state, sep, answer, trig)}

    def difference(self, state):
        return state["a"] - state["b"]

    def counts(self, first, second):
        return {"a": first, "b": second}
