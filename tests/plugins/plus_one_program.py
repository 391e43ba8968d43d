"""A program for the toy family, in one file: Up-Down whose trigger adds one to the count."""

import numpy as np

from numsym_pl.programs import DEMO, CountingProgram


class UpDownPlusOne(CountingProgram):
    """``count`` +1 per demo token and +1 at T, -1 per response read; respond R while count > 0."""

    name, variables, components = "up_down_plus_one", ("count", "phase"), ("count", "phase")

    def step(self, state, token, kinds):
        is_demo, is_resp, is_trig = self.classify(token, state["phase"], kinds)
        first_t = is_trig & (state["phase"] == 0)
        return {"count": state["count"] + is_demo + first_t - is_resp, "phase": np.where(is_trig, 1, state["phase"])}

    def predict(self, state, quantities, kinds):
        demo = np.where(state["count"] < quantities["count"], DEMO, kinds.trigger)
        return np.where(state["phase"] == 1, np.where(state["count"] > 0, kinds.resp, kinds.eos), demo)

    def state_from_counts(self, phase, demo, resp):
        return {"count": demo + phase - resp, "phase": phase}
