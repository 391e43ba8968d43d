"""``attention_hiding``: k chosen demo tokens of the target (1 <= k < n) hidden from attention, as
keys, for every query but their own position, in the chosen blocks (default all).

Ctx-Distr recomputes the count from what it can see: R x (n - k), then E. Only transformers can be
so manipulated, and only Ctx-Distr defines a label for it.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from numsym_pl.das.interventions.context import (ContextIntervention, ContextPairs, response_sequence, state_after,
                                                 to_length)
from numsym_pl.errors import ConfigError
from numsym_pl.programs import Program, TokenKinds
from numsym_pl.tasks.base import TaskFamily


def hiding_pairs(task: TaskFamily, program: Program, n: int, seed: int, n_hidden: int | None = None) -> ContextPairs:
    """Pairs for ``attention_hiding``: ``n_hidden`` (default: uniform in 1..n-1) demo tokens hidden."""
    if program.markovian:
        raise ConfigError(f"program: attention hiding has a label under ctx_distr only, not {program.name!r}")
    rng, kinds = np.random.default_rng(seed), TokenKinds.of(task)
    counts = task.sample_counts("train", n, rng)
    counts = np.where(counts < 2, 2, counts)  # at least one token stays visible
    tgt = task.trials(counts, rng)
    k = np.minimum(n_hidden, counts - 1) if n_hidden else 1 + (rng.random(n) * (counts - 1)).astype(np.int64)
    demo = np.isin(tgt.tokens, kinds.demo) & (np.arange(tgt.tokens.shape[1])[None] < tgt.trigger[:, None])
    keys = np.where(demo, rng.random(demo.shape), np.inf)
    hidden = np.argsort(np.argsort(keys, 1), 1) < k[:, None]
    seen = np.where(hidden, kinds.void, tgt.tokens)  # what Ctx-Distr counts: hidden tokens count for nothing
    state = state_after(program, seen, kinds, tgt.count, tgt.trigger)
    cf, loss_mask, label = response_sequence(program, tgt.tokens, tgt.trigger, tgt.count, state, kinds, rng)
    fit = lambda x: to_length(x, cf.shape[1])
    return ContextPairs(fit(tgt.tokens), torch.as_tensor(cf), fit(hidden), torch.as_tensor(loss_mask),
                        torch.as_tensor(label), torch.as_tensor(tgt.count))



def hiding_attn_mask(hidden: torch.Tensor) -> torch.Tensor:
    """bool [B, L, L], True where query i may attend to key j: hidden keys only to themselves."""
    L = hidden.shape[1]
    eye = torch.eye(L, dtype=torch.bool, device=hidden.device)
    return ~hidden[:, None, :] | eye[None]



class AttentionHiding(ContextIntervention):
    """Args:
        layers: the blocks (0-based) where the tokens are hidden; default all.
    """

    name = "attention_hiding"

    def __init__(self, layers: Optional[list[int]] = None):
        self.layers = None if layers is None else [int(k) for k in layers]

    def identity(self, alignment) -> dict:
        return {"intervention": self.name, "site": None, "featurizer": None, "subspace": None,
                "layers": None if self.layers is None else list(self.layers), "span": None}

    def key(self, alignment) -> str:
        where = "attn" if self.layers is None else "attn" + "-".join(map(str, self.layers))
        return f"{self.name}.{alignment.program}/{where}"

    def check(self, net, alignment) -> None:
        if alignment.program_object().markovian:
            raise ConfigError(f"program: attention hiding has a label under ctx_distr only, not {alignment.program!r}")
        if "attention_mask" not in net.capabilities:
            raise ConfigError(f"intervention: attention hiding needs a transformer, not {type(net).__name__}")

    def pairs(self, task, program, alignment, n, seed):
        return hiding_pairs(task, program, n, seed)  # refuses programs without a label for it

    def patched(self, net, inputs, span, source, site: str):
        return net(inputs, attn_mask=hiding_attn_mask(span), mask_layers=self.layers)
