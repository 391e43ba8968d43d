"""An intervention, in one file: swap the site's leading principal axes between source and target,
with nothing learned. Does the variable live where the states vary most? Scored on the same pairs,
with the same floor and baselines, as the interchange (DAS)."""

import time

from numsym_pl.das.interventions import Intervention, SubspaceSwap
from numsym_pl.das.interventions.interchange import score_swap
from numsym_pl.das.pairs.sets import PairSets


class TopComponents(Intervention):
    """Args:
        subspace: how many leading principal axes (of the site's states on the training sources) are swapped.
    """

    name = "top_components"

    def __init__(self, subspace: int = 16):
        self.subspace = subspace

    def identity(self, alignment) -> dict:
        return {"intervention": self.name, "site": alignment.site, "featurizer": None, "subspace": self.subspace,
                "layers": None, "span": None}

    def key(self, alignment) -> str:
        return f"{self.name}.{alignment.program}.{'+'.join(alignment.variables)}/{alignment.site}"

    def check(self, net, alignment) -> None:
        SubspaceSwap(net.site_width(alignment.site), self.subspace, len(alignment.variables))  # fits the site?

    def run(self, net, task, alignment, settings, init_state=None):
        t0 = time.perf_counter()
        device = next(net.parameters()).device
        sets = PairSets(net, task, alignment, settings, device)
        swap = SubspaceSwap(net.site_width(alignment.site), self.subspace, len(alignment.variables),
                            featurizer="pca_rotation").to(device)
        swap.prepare(sets.src["train"].flatten(0, -2))  # the principal axes, fixed from here on
        return score_swap(net, alignment, settings, sets, swap, None, time.perf_counter() - t0), None
