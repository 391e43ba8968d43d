"""Reviewers' question 3: repeated phase flips within one sequence.

With an Up-Down alignment that has a ``phase`` block, the phase of a recurrent state is flipped by
swapping in the phase block of a state of the other phase (the count block stays the target's).
A sequence with ``k`` flips starts ``B D×a`` and alternates:

- flip to *response*, then ``R×r``: Up-Down counts down and predicts each R (no T was read);
  at the last flip the R's run the count to 0 and Up-Down predicts E after them;
- flip back to *demo*, then ``D×d``: the count rises again; after the last flip ``T`` follows and
  Up-Down predicts ``R×c E`` for the count c reached.

One flip is ``B D×a | R×a E``; two flips ``B D×a | R×r | D×d T R×(a-r+d) E``; every R after a
flip to response, and the answer at the end, are scored. The **unpatched control** reads the same
token stream with no intervention (a net that ignores the flips fails it).

Scored as IIA: a sequence counts only if every scored token is predicted exactly. Needs a net that
carries its state from step to step (``carried_state`` among its ``capabilities``: recurrent nets).
"""

from __future__ import annotations

import numpy as np
import torch

from numsym_pl.das.alignment import Alignment
from numsym_pl.das.iia import exact_rows
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.models.interface import SequenceModel
from numsym_pl.tasks import VOCAB, NumericEquivalence

#: the numbers of flips scored
FLIPS = (1, 2, 3, 4)


def _one_sequence(task: NumericEquivalence, rng: np.random.Generator, flips: int):
    """(tokens, [(patch position, phase set)], scored next-token targets) of one k-flip sequence."""
    top, demo = int(task.max_count), np.asarray(task.demo_tokens)
    count = int(rng.integers(2, top + 1))
    tokens = [VOCAB.BOS, *demo[rng.integers(0, len(demo), count)]]
    patches, scored = [], []
    for i in range(1, flips + 1):
        at = len(tokens) - 1  # the state after the segment's last token is flipped
        if i % 2:  # to the response phase: R's down to 1 (the last flip: down to 0, then E)
            patches.append((at, 1))
            r = count if i == flips else int(rng.integers(1, count))
            scored += range(at, at + r + (i == flips))
            tokens += [task.response_token] * r + ([VOCAB.EOS] if i == flips else [])
            count -= r
        else:  # back to the demo phase: d more objects, at most up to the top of the range
            patches.append((at, 0))
            d = int(rng.integers(1, top - count + 1))
            tokens += list(demo[rng.integers(0, len(demo), d)])
            count += d
    if flips % 2 == 0:  # the sequence ends in the demo phase: T, then the answer
        scored += range(len(tokens), len(tokens) + count + 1)
        tokens += [VOCAB.TRIG] + [task.response_token] * count + [VOCAB.EOS]
    return tokens, patches, scored


def flip_sequences(task: NumericEquivalence, n: int, rng: np.random.Generator, flips: int) -> dict:
    """Token streams [n, L], patch positions ([(positions [n], phase)] in flip order) and the scored
    next-token targets [n, L-1] of ``n`` sequences with ``flips`` flips each."""
    rows = [_one_sequence(task, rng, flips) for _ in range(n)]
    L = max(len(t) for t, _, _ in rows)
    tok = np.full((n, L), VOCAB.PAD)
    scored = np.zeros((n, L - 1), bool)
    for b, (t, _, s) in enumerate(rows):
        tok[b, : len(t)] = t
        scored[b, s] = True
    patches = [(np.array([p[i][0] for _, p, _ in rows]), rows[0][1][i][1]) for i in range(flips)]
    return {"tokens": torch.as_tensor(tok), "patches": patches, "scored": torch.as_tensor(scored)}


@torch.no_grad()
def phase_sources(net: SequenceModel, task: NumericEquivalence, site: str, n: int,
                  rng: np.random.Generator) -> dict[int, torch.Tensor]:
    """{phase: [n, d] states of training trials in that phase}, taken where DAS takes its sources:
    after a demo token (demo phase) or after a response token (response phase), never at T."""
    trials = task.sample("train", n, rng)
    states = net.states(torch.as_tensor(trials.tokens), site)
    rows = torch.arange(n)
    demo_pos = (rng.random(n) * (trials.trigger - 1)).astype(int) + 1
    resp_pos = trials.trigger + 1 + (rng.random(n) * trials.count).astype(int)
    return {0: states[rows, torch.as_tensor(demo_pos)].float(), 1: states[rows, torch.as_tensor(resp_pos)].float()}


@torch.no_grad()
def phase_flips(net: SequenceModel, task: NumericEquivalence, alignment: Alignment, swap: SubspaceSwap, n: int = 500,
                seed: int = 0) -> dict:
    """{"iia": {k: IIA with k flips}, "unpatched": {k: the same streams, no intervention}, "n"}
    for k in ``FLIPS`` (see the module docstring)."""
    if "carried_state" not in net.capabilities:
        return {"skipped": f"{type(net).__name__} does not carry its state from step to step (a phase flip "
                           "needs a state that step t + 1 reads whole)"}
    block = list(alignment.variables).index("phase")
    blocks = torch.zeros(len(alignment.variables), dtype=torch.bool)
    blocks[block] = True
    rng = np.random.default_rng(seed)
    sources = phase_sources(net, task, alignment.site, n, rng)
    out = {"iia": {}, "unpatched": {}, "n": n}
    for flips in FLIPS:
        seq = flip_sequences(task, n, rng, flips)
        patches = [(torch.as_tensor(pos), lambda h, src=sources[phase]: swap(h, src.to(h.dtype), blocks))
                   for pos, phase in seq["patches"]]
        tokens = seq["tokens"]
        for name, applied in (("iia", patches), ("unpatched", [])):
            logits = net.forward_patched_many(tokens, alignment.site, applied)[:, :-1]
            out[name][flips] = float(exact_rows(logits, tokens, seq["scored"]).float().mean())
    return out
