"""Programs of addition and subtraction (``numsym_pl.tasks.arithmetic``): ``B D×a OP D×b T R×(a op b) E``.

In the input phase every program outputs the task's next input (``follow_input``); after ``T`` it
answers R's and then ``E``. ``op`` is 0 before the operator is read, 1 after ``PLUS``, 2 after
``MINUS``. They differ in what they carry through the second operand:

- ``accumulator``: one running ``value`` (+1 per operand token of the first group, then +1 or -1
  per token after the operator), counted down by the answer;
- ``registers``: ``a`` and ``b`` kept apart (tokens after the operator go to ``b``) and combined at
  ``T``: R while the answers given (``given``, bookkeeping) are fewer than a + b or a - b;
- ``arithmetic_recount``: no carried state: ``left`` is recomputed from the whole context at each
  step (Ctx-Distr's kind), so overwriting it changes the next output only.

``accumulator.value`` and ``registers.a`` agree during the first operand; they part in the second.
"""

from __future__ import annotations

import numpy as np

from numsym_pl.programs.base import PhasedProgram


class ArithmeticProgram(PhasedProgram):
    reads = ("demo", "plus", "minus", "resp", "trigger", "eos", "pad", "inputs")

    @staticmethod
    def classify(token, phase, kinds):
        """(operand token, PLUS, MINUS read in the input phase, R read in the answer, trigger)."""
        inp = phase == 0
        return ((token == kinds.demo) & inp, (token == kinds.plus) & inp, (token == kinds.minus) & inp,
                (token == kinds.resp) & (phase == 1), token == kinds.trigger)

    @staticmethod
    def new_op(op, plus, minus):
        return np.where(plus, 1, np.where(minus, 2, op))

    def answer(self, state, kinds):
        return np.where(self.left(state) > 0, kinds.resp, kinds.eos)

    def trace(self, tokens, kinds, quantities):
        phase = self.phase_of(tokens, kinds)
        d, plus, minus, r, _ = self.classify(tokens, phase, kinds)
        op = np.maximum.accumulate(np.where(plus, 1, np.where(minus, 2, 0)), 1)  # one operator per trial
        first = np.cumsum(d & (op == 0), 1)
        second = np.cumsum(d & (op > 0), 1)
        signed = np.cumsum(np.where(d, np.where(op == 2, -1, 1), 0), 1)  # tokens after MINUS count down
        return self.finish_trace(self.state_from(phase, op, first, second, signed, np.cumsum(r, 1)), tokens, kinds)

    def left(self, state):
        raise NotImplementedError

    def state_from(self, phase, op, first, second, signed, given):
        raise NotImplementedError


class Accumulator(ArithmeticProgram):
    name = "accumulator"
    variables = components = ("value", "op", "phase")

    def step(self, state, token, kinds):
        d, plus, minus, r, trig = self.classify(token, state["phase"], kinds)
        sign = np.where(state["op"] == 2, -1, 1)
        return {"value": state["value"] + d * sign - r, "op": self.new_op(state["op"], plus, minus),
                "phase": np.where(trig, 1, state["phase"])}

    def left(self, state):
        return state["value"]

    def state_from(self, phase, op, first, second, signed, given):
        return {"value": signed - given, "op": op, "phase": phase}


class Registers(ArithmeticProgram):
    name = "registers"
    variables, components = ("a", "b", "op", "phase"), ("a", "b", "op", "phase", "given")

    def step(self, state, token, kinds):
        d, plus, minus, r, trig = self.classify(token, state["phase"], kinds)
        return {"a": state["a"] + (d & (state["op"] == 0)), "b": state["b"] + (d & (state["op"] > 0)),
                "op": self.new_op(state["op"], plus, minus), "phase": np.where(trig, 1, state["phase"]),
                "given": state["given"] + r}

    def left(self, state):
        result = np.where(state["op"] == 2, state["a"] - state["b"], state["a"] + state["b"])
        return result - state["given"]

    def state_from(self, phase, op, first, second, signed, given):
        return {"a": first, "b": second, "op": op, "phase": phase, "given": given}


class ArithmeticRecount(ArithmeticProgram):
    name = "arithmetic_recount"
    markovian = False
    variables, components = ("left",), ("left", "context", "op", "phase")

    def step(self, state, token, kinds):
        d, plus, minus, r, trig = self.classify(token, state["phase"], kinds)
        ctx = state["context"] + d * np.where(state["op"] == 2, -1, 1) - r  # read off the context
        return {"left": ctx, "context": ctx, "op": self.new_op(state["op"], plus, minus),
                "phase": np.where(trig, 1, state["phase"])}

    def left(self, state):
        return state["left"]

    def state_from(self, phase, op, first, second, signed, given):
        return {"left": signed - given, "context": signed - given, "op": op, "phase": phase}
