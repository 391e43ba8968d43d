"""Two frozen nets aligned by MAS: their sites, one set of counterfactual pairs for both (each
net's source states and clean caches of it), each net's featurizer, and the four directions an
interchange can take between them (``a->b``, ``b->a`` across the nets, ``a->a``, ``b->b`` within).

A direction ``s->t`` takes the source state from net s at ``i_s`` and patches net t's state at
``i_t`` on the counterfactual inputs, then runs net t on: within a net through that net's
``SubspaceSwap`` (the DAS swap itself), across nets through ``CrossSwap``. Every direction is
scored the way DAS scores a swap (``pair_scores_many``: whole-sequence exactness on the scored
counterfactual tokens), on the same pairs.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch

from numsym_pl.das.alignment import Alignment
from numsym_pl.das.featurizers import featurizer_class
from numsym_pl.das.interventions.interchange import Interchange, new_swap
from numsym_pl.das.interventions.patched import no_intervention, pair_scores_many, patched_logits_many
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.model_alignment.cross_swap import CrossSwap
from numsym_pl.das.pairs.sets import PairSets
from numsym_pl.das.settings import SearchSettings
from numsym_pl.errors import ConfigError
from numsym_pl.models.interface import SequenceModel
from numsym_pl.tasks.base import TaskFamily

#: the two nets' roles, as direction names use them
ROLES = ("a", "b")
#: (source, target) of every direction: across the nets first, then within each
DIRECTIONS = ((0, 1), (1, 0), (0, 0), (1, 1))


def direction_name(source: int, target: int) -> str:
    return f"{ROLES[source]}->{ROLES[target]}"


def frozen(net: SequenceModel) -> SequenceModel:
    """A frozen copy of ``net`` in eval mode (the featurizers are all that trains)."""
    return copy.deepcopy(net).eval().requires_grad_(False)


class NetPair:
    """Two nets, their sites, the pair sets of one alignment of a program's variable(s) for both,
    and each net's swap (started at the principal axes of its own training sources, or as
    ``settings.start`` says).

    Args:
        nets: the two nets (frozen copies are kept; both on ``device``).
        sites: each net's site (None: the net's default site).
        task: the task both nets were trained on.
        program, variables: the causal model and its variable(s), as ``Alignment`` takes them.
        subspace: coordinates of the shared subspace per variable.
        featurizer: each net's learned map (a registered name or class path); one that learns its
            own width cannot share a subspace and is refused.
        settings: the pairs (``n_train``, ``n_val``, ``n_test``, ``seed``) and featurizer start.
        value_map: permuted values written in place of the source's (the null; ``pairs/permuted.py``).
    """

    def __init__(self, nets: Sequence[SequenceModel], sites: Sequence[str | None], task: TaskFamily, program: str,
                 variables, subspace: int, featurizer: str, settings: SearchSettings, device,
                 value_map: dict | None = None, swaps: Sequence[SubspaceSwap] | None = None):
        if getattr(featurizer_class(featurizer), "learns_width", False):
            raise ConfigError(f"mas: featurizer {featurizer!r} learns its own width; the two nets' featurizers must "
                              "share one subspace size (use rotation, low_rank, pca_rotation or revnet)")
        self.nets = [frozen(net).to(device) for net in nets]
        self.alignments = [Alignment(program, variables, site, Interchange(subspace, featurizer)).for_net(net)
                           for net, site in zip(self.nets, sites)]
        for net, alignment in zip(self.nets, self.alignments):
            alignment.intervention.check(net, alignment)  # the site exists and the subspace fits it
        self.sites = [a.site for a in self.alignments]
        self.settings, self.value_map = settings, value_map
        first = PairSets(self.nets[0], task, self.alignments[0], settings, device, value_map=value_map)
        self.sets = [first, PairSets(self.nets[1], task, self.alignments[1], settings, device, pairs=first.pairs)]
        self.swaps = list(swaps) if swaps is not None else [
            new_swap(net, alignment, settings, sets).to(device)
            for net, alignment, sets in zip(self.nets, self.alignments, self.sets)]

    @property
    def pairs(self):
        """The pair sets by name (``train``, ``val``, ``test``; the same pairs for both nets)."""
        return self.sets[0].pairs

    def widths(self) -> list[int]:
        return [net.site_width(site) for net, site in zip(self.nets, self.sites)]

    def swap(self, source: int, target: int):
        """The swap of direction ``source->target``: the net's own ``SubspaceSwap`` within a net,
        a ``CrossSwap`` of the two across."""
        if source == target:
            return self.swaps[source]
        return CrossSwap(self.swaps[source], self.swaps[target])

    def logits(self, source: int, target: int, batch, idx: torch.Tensor) -> torch.Tensor:
        """Net ``target``'s logits [B, Lc-1, V] on the training pairs ``batch`` (rows ``idx`` of the
        training set), patched from net ``source``'s states (with gradients into both featurizers)."""
        cache = self.sets[target].cache["train"]
        return patched_logits_many(self.nets[target], [self.swap(source, target)], self.sites[target], batch,
                                   self.sets[source].src["train"][idx], None if cache is None else cache[idx])

    @torch.no_grad()
    def scores(self, source: int, target: int, name: str, n: int | None = None,
               loss: bool = True, swap=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """([n] bool: which of the first ``n`` pairs of set ``name`` direction ``source->target`` gets
        exactly right, its cross-entropy per scored token or None without ``loss``); ``swap``
        replaces the direction's own (``no_intervention``: the unpatched target net)."""
        cache = self.sets[target].cache[name]
        correct, nll = pair_scores_many(self.nets[target], [swap or self.swap(source, target)], self.sites[target],
                                        self.pairs[name][:n], self.sets[source].src[name][:n],
                                        precision=self.settings.precision,
                                        cache=None if cache is None else cache[:n], loss=loss)
        return correct[0], None if nll is None else nll[0]

    def floor(self, target: int, name: str = "test") -> torch.Tensor:
        """[N] bool: the unpatched net ``target`` on the set's counterfactual inputs (the no-op floor)."""
        return self.scores(target, target, name, loss=False, swap=no_intervention)[0]

    def penalty(self):
        return sum(swap.penalty() for swap in self.swaps)

    def anneal(self, step: int, max_steps: int) -> bool:
        return any([swap.anneal(step, max_steps) for swap in self.swaps])

    def param_groups(self, lr: float) -> list[dict]:
        return [g for swap in self.swaps for g in swap.param_groups(lr)]
