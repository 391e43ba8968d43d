"""The counterfactual-latent (CL) loss: a term of the DAS fit that pulls each patched state towards
a state the net naturally has when the program is in the intervened state (Grant 2025; Grant et
al. 2025, "Addressing divergent representations from causal interventions on neural networks").

The counterfactual run of a pair equals its target up to ``i_t``, so its own state at ``i_t`` is
the target's, not a counterfactual one. The CL target of a pair is instead taken from the natural
states that hold the program state the pair writes at ``i_t`` (``natural.intervened_states``: the
target's state with the intervened variables taken from the source). Natural states are the
site's states of the training pairs' sources at ``i_s`` and targets at ``i_t`` (positions drawn
over the intervenable ones), grouped by the program's variables there (``natural.state_keys``).
Per pair, the CL target (``SearchSettings.cl_target``) is

- ``nearest``: the natural state of that group nearest (Euclidean) to the pair's unpatched target
  state: a state the net does have, with the counterfactual value, that differs least from the
  state the swap overwrites;
- ``mean``: the group's mean (Grant's CL vectors). Where natural states of one program state
  spread along a curve (an LSTM's cell state grows with the position), the mean lies off it, and
  pulling towards it can push the patched states further from natural ones.

A pair whose intervened state no natural state has (a combination the task never produces) has
no CL target and adds nothing to the loss; ``coverage`` is the fraction that has one.

The loss of a batch is the mean, over pairs with a CL target, of the squared distance between the
patched state and its target per coordinate plus their cosine distance (L2 and cosine, as Grant
uses them); ``SearchSettings.cl_weight`` scales it beside the interchange cross-entropy. It
compares whole states at ``i_t``, so it takes swaps at one position only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from numsym_pl.das.natural import intervened_states, program_states, state_keys, target_states
from numsym_pl.errors import ConfigError
from numsym_pl.programs import TokenKinds


#: what a pair's CL target is (see the module's docstring)
CL_TARGETS = ("nearest", "mean")


class CounterfactualLatents:
    """The CL targets of one pair set (see the module's docstring).

    Args:
        target: [N, d] each pair's unpatched state at ``i_t`` (what the swap overwrites).
        vectors: [N, d] each pair's CL target (zero where it has none).
        found: [N] bool, the pairs that have a CL target.
    """

    def __init__(self, target: torch.Tensor, vectors: torch.Tensor, found: torch.Tensor):
        self.target, self.vectors, self.found = target, vectors, found

    @classmethod
    def of(cls, net, task, alignment, sets, name: str = "train", value_map: dict | None = None,
           target: str = "nearest") -> "CounterfactualLatents":
        """The CL targets (``nearest`` or ``mean``) of ``sets.pairs[name]`` on the frozen ``net`` at
        the alignment's site (``value_map``: the permuted values the pairs were made with, if any)."""
        if sets.positions != 1:
            raise ConfigError(f"settings.cl_weight: the counterfactual-latent loss compares the state at i_t, so it "
                              f"needs positions: 1; got positions={sets.positions!r}")
        if target not in CL_TARGETS:
            raise ConfigError(f"settings.cl_target: one of {CL_TARGETS}, got {target!r}")
        program, kinds = alignment.program_object(), TokenKinds.of(task)
        pairs, site = sets.pairs[name], alignment.site
        unpatched = target_states(net, pairs, site)  # [N, d]
        natural = torch.cat([sets.src[name], unpatched])  # [2N, d] sources at i_s, targets at i_t
        keys = np.concatenate([state_keys(program, program_states(program, pairs.source, pairs.source_pos, kinds)),
                               state_keys(program, program_states(program, pairs.cf, pairs.target_pos, kinds))])
        wanted = state_keys(program, intervened_states(program, alignment.variables, pairs, kinds, value_map))
        _, inverse = np.unique(np.concatenate([keys, wanted]), axis=0, return_inverse=True)
        inverse = torch.as_tensor(inverse.reshape(-1), device=natural.device)
        of_natural, of_pair = inverse[: len(keys)], inverse[len(keys):]
        vectors, found = torch.zeros_like(unpatched), torch.zeros(len(pairs), dtype=torch.bool, device=natural.device)
        for group in torch.unique(of_pair).tolist():
            rows, members = (of_pair == group).nonzero()[:, 0], (of_natural == group).nonzero()[:, 0]
            if len(members) == 0:
                continue
            found[rows] = True
            if target == "mean":
                vectors[rows] = natural[members].mean(0)
            else:  # the member nearest to each pair's unpatched state
                nearest = torch.cdist(unpatched[rows], natural[members]).argmin(1)  # [rows]
                vectors[rows] = natural[members[nearest]]
        return cls(unpatched, vectors, found)

    @property
    def coverage(self) -> float:
        """The fraction of pairs with a CL target."""
        return self.found.float().mean().item()

    def loss(self, swap, idx: torch.Tensor, source: torch.Tensor, blocks: torch.Tensor | None = None) -> torch.Tensor:
        """The CL loss of ``swap`` on pairs ``idx`` (their source states ``source`` [B, d], the
        blocks they intervene on): a scalar that carries the swap's gradient."""
        patched = swap(self.target[idx], source, blocks).float()  # [B, d]
        cl, found = self.vectors[idx], self.found[idx]
        per_pair = (patched - cl).pow(2).mean(-1) + 1.0 - F.cosine_similarity(patched, cl, dim=-1)
        return torch.where(found, per_pair, 0.0).sum() / found.sum().clamp(min=1)
