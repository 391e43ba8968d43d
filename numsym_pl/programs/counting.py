"""Counting programs (docs/method.md#programs) for tasks with a demo phase, a trigger and a response phase.

They read the token roles ``demo``, ``resp``, ``trigger``, ``eos`` and ``pad`` and the trial
quantity ``count`` (how many objects the demo phase shows: in the demo phase the program
predicts ``DEMO`` while fewer are in, then the trigger). Any task family that declares these fits.
"""

from __future__ import annotations

import numpy as np

from numsym_pl.programs.base import DEMO, Program, TokenKinds


class CountingProgram(Program):
    """Shared pieces of the counting programs: token classes, phase and running counts."""

    reads = ("demo", "resp", "trigger", "eos", "pad")
    reads_quantities = ("count",)

    @staticmethod
    def classify(token, phase, kinds: TokenKinds):
        """(is demo token, is response token, is trigger) of ``token`` read in ``phase``."""
        is_demo = np.isin(token, kinds.demo) & (phase == 0)
        is_resp = (token == kinds.resp) & (phase == 1)
        return is_demo, is_resp, token == kinds.trigger

    @classmethod
    def _phase_and_counts(cls, tokens, kinds):
        phase = (np.cumsum(tokens == kinds.trigger, 1) > 0).astype(np.int64)
        is_demo, is_resp, _ = cls.classify(tokens, phase, kinds)  # a demo/resp token never flips the phase
        return phase, np.cumsum(is_demo, 1), np.cumsum(is_resp, 1)

    def scored(self, state):
        """The response phase's outputs (R's and E) are the scored answers."""
        return state["phase"] == 1

    def trace(self, tokens, kinds, quantities):
        phase, demo, resp = self._phase_and_counts(tokens, kinds)
        state = self.state_from_counts(phase, demo, resp)
        per_position = {"count": np.asarray(quantities["count"])[:, None]}  # [N, 1] against states [N, L]
        return state, self._finish(self.predict(state, per_position, kinds), tokens, kinds)

    def state_from_counts(self, phase, demo, resp):
        raise NotImplementedError


class UpDown(CountingProgram):
    """``count`` goes up with each demo token (U adds 0), T flips ``phase``, each response token
    read takes 1 off; respond R while count > 0, then E."""

    name, variables, components = "up_down", ("count", "phase"), ("count", "phase")

    def step(self, state, token, kinds):
        is_demo, is_resp, is_trig = self.classify(token, state["phase"], kinds)
        return {"count": state["count"] + is_demo - is_resp, "phase": np.where(is_trig, 1, state["phase"])}

    def predict(self, state, quantities, kinds):
        demo = np.where(state["count"] < quantities["count"], DEMO, kinds.trigger)
        resp = np.where(state["count"] > 0, kinds.resp, kinds.eos)
        return np.where(state["phase"] == 1, resp, demo)

    def state_from_counts(self, phase, demo, resp):
        return {"count": demo - resp, "phase": phase}


class UpUp(CountingProgram):
    """``demo_count`` counts demo tokens, ``resp_count`` counts response tokens; respond R while
    resp_count < demo_count, E at equality. The baseline hypothesis.

    Scored are the response phase's outputs up to the E at equality. Where an intervention leaves
    resp_count above demo_count the program emits E at once, and that E is not scored: it is not
    the answer at equality the rule stands for (as in the authors' ``CountUpUp``)."""

    name, variables, components = "up_up", ("demo_count", "resp_count", "phase"), ("demo_count", "resp_count", "phase")

    def step(self, state, token, kinds):
        is_demo, is_resp, is_trig = self.classify(token, state["phase"], kinds)
        return {"demo_count": state["demo_count"] + is_demo, "resp_count": state["resp_count"] + is_resp,
                "phase": np.where(is_trig, 1, state["phase"])}

    def predict(self, state, quantities, kinds):
        demo = np.where(state["demo_count"] < quantities["count"], DEMO, kinds.trigger)
        resp = np.where(state["resp_count"] < state["demo_count"], kinds.resp, kinds.eos)
        return np.where(state["phase"] == 1, resp, demo)

    def scored(self, state):
        return (state["phase"] == 1) & (state["resp_count"] <= state["demo_count"])

    def state_from_counts(self, phase, demo, resp):
        return {"demo_count": demo, "resp_count": resp, "phase": phase}


class CtxDistr(CountingProgram):
    """Context-distributed: no cumulative state. At every step the quantity is recomputed from the
    whole context, ``balance`` = (#response tokens) - (#demo tokens) in the prefix (a sum; its sign,
    all the rule uses, is that of the average); respond R while balance < 0, E when it balances.

    The program's only variable is ``balance``; ``context_sum`` and ``phase`` are read off the
    context itself. Overwriting ``balance`` therefore changes the very next prediction only: the
    next step recomputes it from the context ("anti-Markovian").
    """

    name, variables, components = "ctx_distr", ("balance",), ("balance", "context_sum", "phase")
    markovian = False

    def step(self, state, token, kinds):
        is_demo, is_resp, is_trig = self.classify(token, state["phase"], kinds)
        ctx = state["context_sum"] + is_resp - is_demo
        return {"balance": ctx, "context_sum": ctx, "phase": np.where(is_trig, 1, state["phase"])}

    def predict(self, state, quantities, kinds):
        demo = np.where(-state["balance"] < quantities["count"], DEMO, kinds.trigger)
        resp = np.where(state["balance"] < 0, kinds.resp, kinds.eos)
        return np.where(state["phase"] == 1, resp, demo)

    def state_from_counts(self, phase, demo, resp):
        return {"balance": resp - demo, "context_sum": resp - demo, "phase": phase}
