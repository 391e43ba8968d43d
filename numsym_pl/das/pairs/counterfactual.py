"""Counterfactual pairs for interchange interventions (docs/method.md#counterfactual-pairs).

Generic over (task family, program). For each pair: a source and a target trial, positions ``i_s``
and ``i_t`` drawn uniformly over the positions the task marks ``intervenable`` (numeric
equivalence: demo-phase inputs, demo or void, and response inputs), the program's variable(s)
read on the source at ``i_s``, written into the target's state at ``i_t``, and the program rolled
forward to its end token. The counterfactual sequence is the target up to ``i_t`` followed by
that continuation. The scored targets are the continuation's outputs the program calls answers
(``Program.scored``; counting programs: the response phase's R's and E): positions before ``i_t``
are not touched by the intervention.

A pair is identified by its ``key``: a 64-bit hash of (source trial, target trial, ``i_s``,
``i_t``). ``make_pairs(exclude=...)`` draws pairs none of whose keys are in ``exclude``, which is
how DAS keeps its validation and test pairs disjoint from its training pairs (on Single- and
Same-Object a trial is fixed by its count, so independent draws repeat about a fifth of them).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal, Sequence

import numpy as np
import torch

from numsym_pl.errors import ConfigError
from numsym_pl.programs import Program, TokenKinds, rollout
from numsym_pl.tasks.base import TaskFamily
from numsym_pl.tasks.base import Split, Trials


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
    target_quantity: torch.Tensor  # [N] the target trial's first task quantity (numeric equivalence: its count)
    blocks: torch.Tensor  # [N, n_variables] bool: the variables (rotation blocks) this pair intervenes on
    key: torch.Tensor  # [N] int64: hash of (source trial, target trial, i_s, i_t), see pair_keys
    #: [N] bool: the label differs from what the program predicts on cf without intervention
    #: (None for pairs made with ``floor=False``: training pairs, which are never scored for it)
    effective: torch.Tensor | None = None
    #: [N, Lc - 1] bool: the scored targets the intervention changes (the program's label differs
    #: there from what it predicts on cf without intervention); the other scored targets are what
    #: the intervention must leave alone (cause and isolation, ``interventions/cause.py``). None with ``floor=False``
    changed: torch.Tensor | None = None
    #: [N, P] long: for a swap at several positions (``Interchange.positions``), the target position
    #: ``i_t - j`` each offset j patches (its source: ``i_s - j``), -1 where offset j patches nothing
    #: in that pair (``pairs/windows.py``, ``with_window``); None for a swap at ``i_t`` alone
    window: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.source_pos)

    def _map(self, fn) -> "PairBatch":
        return PairBatch(**{f.name: None if getattr(self, f.name) is None else fn(getattr(self, f.name))
                            for f in fields(self)})

    def __getitem__(self, idx) -> "PairBatch":
        return self._map(lambda x: x[idx])

    def to(self, device) -> "PairBatch":
        return self._map(lambda x: x.to(device))


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _row_hash(tokens: np.ndarray) -> np.ndarray:
    """[N] uint64 hash of each row; trailing padding (id 0) does not change it."""
    powers = np.cumprod(np.full(tokens.shape[1], 1_000_003, np.uint64), dtype=np.uint64)
    return (tokens.astype(np.uint64) * powers[None, :]).sum(1, dtype=np.uint64)


def pair_keys(source: np.ndarray, target: np.ndarray, i_s: np.ndarray, i_t: np.ndarray) -> np.ndarray:
    """[N] int64 key of each pair: a hash of (source trial, target trial, i_s, i_t)."""
    with np.errstate(over="ignore"):
        h = np.zeros(len(source), np.uint64)
        for part in (_row_hash(source), _row_hash(target), i_s.astype(np.uint64), i_t.astype(np.uint64)):
            h = (h ^ part) * _MIX + np.uint64(0x632BE59BD9B4E019)
            h ^= h >> np.uint64(29)
    return h.view(np.int64)


def _take(trials: Trials, idx: np.ndarray) -> Trials:
    return Trials(trials.tokens[idx], trials.scored[idx], trials.intervenable[idx],
                  {k: v[idx] for k, v in trials.quantities.items()})


def _draw(task: TaskFamily, source_split: Split, target_split: Split, n: int, rng, exclude: np.ndarray | None):
    """(source trials, target trials, i_s, i_t, keys) of ``n`` pairs, none keyed in ``exclude``.
    Without ``exclude`` exactly ``n`` are drawn; with it, candidates are drawn in rounds and the
    excluded ones dropped."""
    need, rounds = n, 0
    while True:
        m = n if exclude is None else need + need // 2 + 64
        src, tgt = task.sample(source_split, m, rng), task.sample(target_split, m, rng)
        if len(src) < m or len(tgt) < m:
            raise ConfigError(f"split: task {task.family!r} has no "
                              f"{source_split if len(src) < m else target_split!r} trials")
        i_s = _intervenable_positions(src.intervenable, rng)
        i_t = _intervenable_positions(tgt.intervenable, rng)
        keys = pair_keys(src.tokens, tgt.tokens, i_s, i_t)
        if exclude is None:
            return src, tgt, i_s, i_t, keys
        keep = np.flatnonzero(~np.isin(keys, exclude))[:n]
        if len(keep) == n:
            return _take(src, keep), _take(tgt, keep), i_s[keep], i_t[keep], keys[keep]
        rounds += 1
        need = 2 * need
        if rounds > 6:
            raise ConfigError(f"make_pairs: fewer than {n} pairs of {task.family!r} ({source_split} -> {target_split}) "
                              f"are left outside the {len(exclude)} excluded ones; ask for fewer pairs")


def _intervenable_positions(intervenable: np.ndarray, rng) -> np.ndarray:
    """One position per row, uniform over the row's intervenable positions."""
    keys = np.where(intervenable, rng.random(intervenable.shape), -1.0)
    return keys.argmax(1)


def counterfactual(program: Program, tokens: np.ndarray, pos: np.ndarray, state: dict, quantities: dict,
                   kinds: TokenKinds, rng: np.random.Generator, max_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``tokens[b, : pos[b] + 1]`` followed by the program rolled forward from ``state`` (its state
    after ``pos``) to its end token, built with one gather: (cf [N, L], scored mask [N, L - 1]).
    Scored are the continuation's answers (``program.scored``), next-token targets t >= pos."""
    cont, cont_scored = rollout(program, state, quantities, kinds, rng, max_steps, tokens, pos)  # [N, S]
    L = int((pos + 1 + (cont != kinds.pad).sum(1)).max())
    j = np.arange(L)[None, :]
    rel = j - pos[:, None] - 1  # index into the continuation
    head = np.take_along_axis(tokens, np.minimum(j, tokens.shape[1] - 1), 1)
    in_cont = (rel >= 0) & (rel < cont.shape[1])
    at = np.clip(rel, 0, cont.shape[1] - 1)
    tail = np.where(in_cont, np.take_along_axis(cont, at, 1), kinds.pad)
    cf = np.where(rel >= 0, tail, head)
    # target t is token t + 1, i.e. continuation index t - pos
    loss_mask = (in_cont & np.take_along_axis(cont_scored, at, 1))[:, 1:]
    return cf, loss_mask


def make_pairs(task: TaskFamily, program: Program, variables: Sequence[str], n: int, seed: int,
               source_split: Split = "train", target_split: Split = "train",
               subsets: Literal["all", "random"] | int = "all", floor: bool = True,
               exclude: np.ndarray | torch.Tensor | None = None) -> PairBatch:
    """``n`` counterfactual pairs, vectorised and reproducible from ``seed``; sources and targets
    are trials of the named splits of the task. With several variables, ``subsets`` says which
    each pair intervenes on: ``all`` of them, a ``random`` non-empty subset per pair (what makes
    each rotation block stand for its own variable when training), or only the variable with that
    index. ``floor`` marks the ``effective`` pairs (one more trace of the counterfactuals); pairs
    that are only trained on need not. ``exclude`` holds pair keys (``PairBatch.key``) none of the
    pairs may have: the training pairs, when drawing held-out ones."""
    variables = program.check_variables(variables)
    program.check_task(task)
    rng = np.random.default_rng(seed)
    kinds = TokenKinds.of(task)
    if isinstance(exclude, torch.Tensor):
        exclude = exclude.cpu().numpy()
    src, tgt, i_s, i_t, keys = _draw(task, source_split, target_split, n, rng, exclude)
    b = np.arange(n)
    src_state, _ = program.trace(src.tokens, kinds, src.quantities)
    tgt_state, _ = program.trace(tgt.tokens, kinds, tgt.quantities)
    blocks = np.ones((n, len(variables)), dtype=bool)
    if subsets == "random" and len(variables) > 1:
        pick = rng.integers(1, 2 ** len(variables), n)  # a non-empty subset, as a bit mask
        blocks = (pick[:, None] >> np.arange(len(variables))[None, :]) & 1 == 1
    elif isinstance(subsets, int) and not isinstance(subsets, bool):
        blocks = np.arange(len(variables))[None, :].repeat(n, 0) == subsets
    state = {k: v[b, i_t] for k, v in tgt_state.items()}
    for j, var in enumerate(variables):
        state[var] = np.where(blocks[:, j], src_state[var][b, i_s], state[var])
    max_steps = src.tokens.shape[1] + tgt.tokens.shape[1]  # no continuation is longer than both trials
    cf, loss_mask = counterfactual(program, tgt.tokens, i_t, state, tgt.quantities, kinds, rng, max_steps)
    if not loss_mask.any(1).all():
        raise RuntimeError("make_pairs: a counterfactual without a scored answer token")
    # the no-op floor: a pair whose scored labels are what the program, not intervened on, predicts
    # on the same counterfactual inputs measures nothing (a net that ignores the patch gets it right)
    effective = changed = None
    if floor:
        _, unintervened = program.trace(cf, kinds, tgt.quantities)
        changed = loss_mask & (unintervened[:, :-1] != cf[:, 1:])
        effective = changed.any(1)

    as_t = lambda x: torch.as_tensor(np.ascontiguousarray(x))
    first = tgt.quantities[task.quantities[0]] if task.quantities else np.zeros(n, np.int64)
    return PairBatch(source=as_t(src.tokens), source_pos=as_t(i_s), cf=as_t(cf), target_pos=as_t(i_t),
                     loss_mask=as_t(loss_mask), source_value=as_t(src_state[variables[0]][b, i_s]),
                     target_quantity=as_t(first), blocks=as_t(blocks), key=as_t(keys),
                     effective=None if effective is None else as_t(effective),
                     changed=None if changed is None else as_t(changed))
