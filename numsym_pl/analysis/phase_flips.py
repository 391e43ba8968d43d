"""Reviewers' question 3: repeated phase flips within one sequence.

With an Up-Down alignment that has a ``phase`` block, the phase of a recurrent state is flipped by
swapping in the phase block of a state of the other phase (the count block stays the target's):

- **one flip**: ``B D×a`` then flip to *response*: Up-Down predicts ``R×a E`` at once, without a T.
- **two flips**: ``B D×a`` | flip to response | ``R×r`` | flip back to *demo* | ``D×d T``: Up-Down
  counts a, down to a - r, up again to f = a - r + d, and predicts ``R×f E`` after T; the R's
  read after the first flip must be predicted too.
- **unpatched control**: the two-flip token stream with no intervention.

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


def flip_sequences(task: NumericEquivalence, n: int, rng: np.random.Generator, flips: int) -> dict:
    """Token streams, patch positions, target phases and scored-target masks for ``flips`` (1 or 2)."""
    top = int(task.max_count)
    a = rng.integers(2, top + 1, n)
    r = np.where(flips == 2, (rng.random(n) * (a - 1)).astype(int) + 1, a)  # R's read in the flipped response
    d = (rng.random(n) * (top - (a - r))).astype(int) + 1 if flips == 2 else np.zeros(n, int)
    final = a - r + d  # responses after T (two flips); one flip: the R's after the flip are the response
    L = int((a + r + d + final + 4).max())
    j = np.arange(L)[None]
    demo = np.asarray(task.demo_tokens)[rng.integers(0, len(task.demo_tokens), (n, L))]
    A, R, D, F = a[:, None], r[:, None], d[:, None], final[:, None]
    tok = np.full((n, L), VOCAB.PAD)
    tok[:, 0] = VOCAB.BOS
    tok = np.where((j >= 1) & (j <= A), demo, tok)
    tok = np.where((j > A) & (j <= A + R), task.response_token, tok)
    if flips == 1:
        tok = np.where(j == A + R + 1, VOCAB.EOS, tok)
        scored = (j >= A) & (j <= A + R)  # next-token targets R×a, E
    else:
        trig = A + R + D + 1
        tok = np.where((j > A + R) & (j < trig), demo, tok)
        tok = np.where(j == trig, VOCAB.TRIG, tok)
        tok = np.where((j > trig) & (j <= trig + F), task.response_token, tok)
        tok = np.where(j == trig + F + 1, VOCAB.EOS, tok)
        scored = ((j >= A) & (j < A + R)) | ((j >= trig) & (j <= trig + F))
    patches = [(a, 1)] if flips == 1 else [(a, 1), (a + r, 0)]  # (position, phase to set)
    return {"tokens": torch.as_tensor(tok), "patches": patches, "scored": torch.as_tensor(scored[:, : L - 1])}


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
    """{"one_flip", "two_flips", "two_flips_unpatched": IIA, "n"} (see the module docstring)."""
    if "carried_state" not in net.capabilities:
        return {"skipped": f"{type(net).__name__} does not carry its state from step to step (a phase flip "
                           "needs a state that step t + 1 reads whole)"}
    block = list(alignment.variables).index("phase")
    blocks = torch.zeros(len(alignment.variables), dtype=torch.bool)
    blocks[block] = True
    rng = np.random.default_rng(seed)
    sources = phase_sources(net, task, alignment.site, n, rng)
    out = {"n": n}
    for name, flips, patched in (("one_flip", 1, True), ("two_flips", 2, True), ("two_flips_unpatched", 2, False)):
        seq = flip_sequences(task, n, rng, flips)
        patches = []
        if patched:
            for pos, phase in seq["patches"]:
                src = sources[phase]
                patches.append((torch.as_tensor(pos), lambda h, src=src: swap(h, src.to(h.dtype), blocks)))
        tokens = seq["tokens"]
        logits = net.forward_patched_many(tokens, alignment.site, patches)[:, :-1]
        out[name] = float(exact_rows(logits, tokens, seq["scored"]).float().mean())
    return out
