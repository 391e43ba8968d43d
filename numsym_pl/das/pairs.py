"""Counterfactual pairs for interchange interventions (SPEC §3, last item).

For each pair: a source and a target trial, positions ``i_s`` and ``i_t`` drawn uniformly over
positions whose input token is a demo-phase token (demo or void) or a response token, the
program's variable(s) read on the source at ``i_s``, written into the target's state at ``i_t``,
and the program rolled forward to E. The counterfactual sequence is the target up to ``i_t``
followed by that continuation. The scored targets are its response-phase tokens (R's and E)
after the intervention: positions before ``i_t`` are not touched by it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal, Sequence

import numpy as np
import torch

from numsym_pl.programs import Program, TokenKinds, rollout
from numsym_pl.tasks import VOCAB, Task


@dataclass
class PairBatch:
    """Tensors of N pairs. ``cf`` is the counterfactual sequence; ``loss_mask[b, t]`` marks the
    next-token targets ``cf[b, t + 1]`` that are scored."""

    source: torch.Tensor  # [N, Ls]
    source_pos: torch.Tensor  # [N] i_s
    cf: torch.Tensor  # [N, Lc]
    target_pos: torch.Tensor  # [N] i_t
    loss_mask: torch.Tensor  # [N, Lc - 1] bool
    source_value: torch.Tensor  # [N] value of the first intervened variable on the source
    target_count: torch.Tensor  # [N] objects of the target trial
    blocks: torch.Tensor  # [N, n_variables] bool: the variables (rotation blocks) this pair intervenes on

    def __len__(self) -> int:
        return len(self.source_pos)

    def __getitem__(self, idx) -> "PairBatch":
        return PairBatch(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def to(self, device) -> "PairBatch":
        return PairBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def _intervenable_positions(tokens: np.ndarray, trigger: np.ndarray, count: np.ndarray, rng) -> np.ndarray:
    """One position per row, uniform over demo-phase and response inputs (not P, B, T, E)."""
    j = np.arange(tokens.shape[1])[None, :]
    ok = ((j >= 1) & (j < trigger[:, None])) | ((j > trigger[:, None]) & (j <= (trigger + count)[:, None]))
    keys = np.where(ok, rng.random(tokens.shape), -1.0)
    return keys.argmax(1)


def counterfactual(program: Program, tokens: np.ndarray, pos: np.ndarray, state: dict, counts: np.ndarray,
                   kinds: TokenKinds, rng: np.random.Generator, max_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``tokens[b, : pos[b] + 1]`` followed by the program rolled forward from ``state`` (its state
    after ``pos``) to E, built with one gather: (cf [N, L], scored mask [N, L - 1]). Scored are the
    response-phase targets (R, E) at next-token positions t >= pos; the response phase starts at a
    T, or at ``pos`` itself when ``state`` is already in it."""
    cont = rollout(program, state, counts, kinds, rng, max_steps)  # [N, S]
    L = int((pos + 1 + (cont != VOCAB.PAD).sum(1)).max())
    j = np.arange(L)[None, :]
    rel = j - pos[:, None] - 1  # index into the continuation
    head = np.take_along_axis(tokens, np.minimum(j, tokens.shape[1] - 1), 1)
    tail = np.where(rel < cont.shape[1], np.take_along_axis(cont, np.clip(rel, 0, cont.shape[1] - 1), 1), VOCAB.PAD)
    cf = np.where(rel >= 0, tail, head)
    nxt = cf[:, 1:]
    phase_after = (np.cumsum(cf == VOCAB.TRIG, 1)[:, :-1] > 0) | (state["phase"][:, None] == 1)
    t = np.arange(L - 1)[None, :]
    loss_mask = phase_after & ((nxt == kinds.resp) | (nxt == VOCAB.EOS)) & (t >= pos[:, None])
    return cf, loss_mask


def make_pairs(task: Task, program: Program, variables: Sequence[str], n: int, seed: int,
               source_counts: Literal["train", "heldout", "ood"] | Sequence[int] = "train",
               target_counts: Literal["train", "heldout", "ood"] | Sequence[int] = "train",
               subsets: Literal["all", "random"] | int = "all") -> PairBatch:
    """``n`` counterfactual pairs, vectorised and reproducible from ``seed``. Counts are drawn
    from a named set of the task or uniformly from an explicit list. With several variables,
    ``subsets`` says which each pair intervenes on: ``all`` of them, a ``random`` non-empty subset
    per pair (what makes each rotation block stand for its own variable when training), or only
    the variable with that index."""
    variables = program.check_variables(variables)
    rng = np.random.default_rng(seed)
    kinds = TokenKinds.of(task)

    def sample(which):
        counts = rng.choice(np.asarray(which), n) if not isinstance(which, str) else task.sample_counts(which, n, rng)
        return task.sample(counts, rng)

    src, tgt = sample(source_counts), sample(target_counts)
    i_s = _intervenable_positions(src.tokens, src.trigger, src.count, rng)
    i_t = _intervenable_positions(tgt.tokens, tgt.trigger, tgt.count, rng)
    b = np.arange(n)
    src_state, _ = program.trace(src.tokens, kinds, src.count)
    tgt_state, _ = program.trace(tgt.tokens, kinds, tgt.count)
    blocks = np.ones((n, len(variables)), dtype=bool)
    if subsets == "random" and len(variables) > 1:
        pick = rng.integers(1, 2 ** len(variables), n)  # a non-empty subset, as a bit mask
        blocks = (pick[:, None] >> np.arange(len(variables))[None, :]) & 1 == 1
    elif isinstance(subsets, int) and not isinstance(subsets, bool):
        blocks = np.arange(len(variables))[None, :].repeat(n, 0) == subsets
    state = {k: v[b, i_t] for k, v in tgt_state.items()}
    for j, var in enumerate(variables):
        state[var] = np.where(blocks[:, j], src_state[var][b, i_s], state[var])
    max_steps = 2 * int(max(src.count.max(), tgt.count.max())) + 4
    cf, loss_mask = counterfactual(program, tgt.tokens, i_t, state, tgt.count, kinds, rng, max_steps)
    if not loss_mask.any(1).all():
        raise RuntimeError("make_pairs: a counterfactual without a scored response token")

    as_t = lambda x: torch.as_tensor(np.ascontiguousarray(x))
    return PairBatch(source=as_t(src.tokens), source_pos=as_t(i_s), cf=as_t(cf), target_pos=as_t(i_t),
                     loss_mask=as_t(loss_mask), source_value=as_t(src_state[variables[0]][b, i_s]),
                     target_count=as_t(tgt.count), blocks=as_t(blocks))
