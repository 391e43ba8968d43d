"""``context_substitution``: the target's states over a span of its demo phase replaced by a
source's states at the same positions.

Source and target trials have demo phases of equal length m (they differ in count through void
tokens, so the task needs void tokens, ``p_void > 0``). At a site, the target's states over a span
[a, b] of demo-phase positions are replaced by the source's states at the same positions; the net
continues. The label depends on the program: a Markovian program (Up-Down, Up-Up) reads the span as
if the source's tokens up to b had been read (its state after b is the source's); Ctx-Distr reads it
as if only the span's tokens were the source's. The expected response is R x (the program's count
at T), then E.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from numsym_pl.das.interventions.context import (ContextIntervention, ContextPairs, context_correct,
                                                 response_sequence, state_after, to_length)
from numsym_pl.errors import ConfigError
from numsym_pl.programs import Program, TokenKinds
from numsym_pl.tasks.base import TaskFamily


def substitution_pairs(task: TaskFamily, program: Program, n: int, seed: int,
                       span: Literal["random", "all"] = "random") -> ContextPairs:
    """Pairs for ``context_substitution`` (see the module docstring)."""
    if getattr(task, "p_void", 0) <= 0:
        raise ConfigError("p_void: context substitution needs a void-token task (p_void > 0), so that demo phases of "
                          "equal length can hold different counts")
    rng, kinds = np.random.default_rng(seed), TokenKinds.of(task)
    tgt = task.sample("train", n, rng)
    m = tgt.trigger - 1  # demo-phase length
    pool = np.sort(task.train_counts)
    n_ok = np.searchsorted(pool, m, side="right")  # counts <= m are possible for the source
    n_src = pool[(rng.random(n) * n_ok).astype(int)]
    src = task.trials(n_src, rng, voids=m - n_src)
    L = max(tgt.tokens.shape[1], src.tokens.shape[1])
    pad = lambda x: np.pad(x, ((0, 0), (0, L - x.shape[1])))
    s_tok, t_tok = pad(src.tokens), pad(tgt.tokens)
    if span == "all":
        a, b = np.ones(n, np.int64), m
    else:
        a = 1 + (rng.random(n) * m).astype(np.int64)
        b = a + (rng.random(n) * (m - a + 1)).astype(np.int64)
    j = np.arange(L)[None, :]
    in_span = (j >= a[:, None]) & (j <= b[:, None])
    spliced = np.where(j <= b[:, None] if program.markovian else in_span, s_tok, t_tok)
    state = state_after(program, spliced, kinds, tgt.count, tgt.trigger)
    cf, loss_mask, label = response_sequence(program, t_tok, tgt.trigger, tgt.count, state, kinds, rng)
    fit = lambda x: to_length(x, cf.shape[1])
    return ContextPairs(fit(s_tok), torch.as_tensor(cf), fit(in_span), torch.as_tensor(loss_mask),
                        torch.as_tensor(label), torch.as_tensor(tgt.count))




class ContextSubstitution(ContextIntervention):
    """Args:
        span: ``random`` demo-phase spans, or ``all`` of the demo phase.
    """

    name = "context_substitution"

    def __init__(self, span: Literal["random", "all"] = "random"):
        if span not in ("random", "all"):
            raise ConfigError(f"span: 'random' or 'all', got {span!r}")
        self.span = span

    def identity(self, alignment) -> dict:
        return {"intervention": self.name, "site": alignment.site, "featurizer": None, "subspace": None,
                "layers": None, "span": self.span}

    def key(self, alignment) -> str:
        return f"{self.name}.{alignment.program}/{alignment.site}"

    def pairs(self, task, program, alignment, n, seed):
        return substitution_pairs(task, program, n, seed, self.span)

    def patched(self, net, inputs, span, source, site: str):
        src = net.states(source[:, :-1], site)  # [B, L-1, d]
        return net.forward_spliced(inputs, site, span, src)

    def controls(self, net, alignment, pairs):
        """The span from an unrelated trial: each target takes the states of another pair's source
        (of another demo length and count) over the same positions, scored against the same label."""
        unrelated = ContextPairs(pairs.source.roll(1, 0), pairs.cf, pairs.span, pairs.loss_mask, pairs.label_count,
                                 pairs.own_count)
        ok = context_correct(net, unrelated, lambda *a: self.patched(*a, site=alignment.site))
        return {"unrelated_span": {"iia": ok.float().mean().item(), "n": len(ok)}}
