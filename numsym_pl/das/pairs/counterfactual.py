"""Counterfactual pairs for interchange interventions (docs/method.md#counterfactual-pairs).

Generic over (task family, program). For each pair: a source and a target trial, positions ``i_s``
and ``i_t`` drawn uniformly over the positions the task marks ``intervenable`` (numeric
equivalence: demo-phase inputs, demo or void, and response inputs), the program's variable(s)
read on the source at ``i_s``, written into the target's state at ``i_t``, and the program rolled
forward to its end token. The counterfactual sequence is the target up to ``i_t`` followed by
that continuation. The scored targets are the continuation's outputs the program calls answers
(``Program.scored``; counting programs: the response phase's R's and E): positions before ``i_t``
are not touched by the intervention. A pair whose continuation scores nothing is not kept
(``make_pairs``' ``keep_unscored``).

A pair is identified by its ``key``: a 64-bit hash of what an interchange sees of it, the source
prefix up to ``i_s`` (a net's state at ``i_s`` depends on nothing after it), ``i_s``, ``i_t``, the
counterfactual sequence, the loss mask and which variables it intervenes on (``blocks``).
``make_pairs(exclude=...)`` keeps only pairs none of whose keys are in ``exclude``, which is how DAS
keeps its validation and test pairs disjoint in content from its training pairs (on Single- and
Same-Object a trial is fixed by its count, so independent draws repeat about half of 10,000). Since
the key needs the counterfactual, candidates are drawn in rounds, built, and the excluded ones
dropped; ``PairBatch.removed`` is the share of the candidates dropped so.

``value_map`` writes a permuted value into the target instead of the source's own (the fitted null
of ``das/controls.py``; the maps are made in ``pairs/permuted.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal, Sequence

import numpy as np
import torch

from numsym_pl.errors import ConfigError
from numsym_pl.das.pairs.permuted import apply_map
from numsym_pl.programs import Program, TokenKinds, rollout
from numsym_pl.programs.base import DEMO
from numsym_pl.tasks.base import TaskFamily
from numsym_pl.tasks.base import Split


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
    key: torch.Tensor  # [N] int64: hash of what an interchange sees of the pair, see pair_keys
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
    #: the share of the candidate pairs (with a scored answer) that were dropped because their key is
    #: in ``make_pairs``' ``exclude``; None for pairs drawn without it. Not a tensor: indexing keeps it
    removed: float | None = None

    def __len__(self) -> int:
        return len(self.source_pos)

    def _map(self, fn) -> "PairBatch":
        return PairBatch(**{f.name: fn(x) if isinstance(x := getattr(self, f.name), torch.Tensor) else x
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


def pair_keys(source: np.ndarray, i_s: np.ndarray, i_t: np.ndarray, cf: np.ndarray, loss_mask: np.ndarray,
              blocks: np.ndarray) -> np.ndarray:
    """[N] int64 key of each pair: a hash of what an interchange sees of it, the source prefix
    ``source[:, : i_s + 1]``, ``i_s``, ``i_t``, the counterfactual ``cf``, the ``loss_mask`` and the
    intervened variables ``blocks`` [N, n_variables]. Trailing padding does not change it."""
    prefix = np.where(np.arange(source.shape[1])[None, :] <= i_s[:, None], source, 0)
    parts = (_row_hash(prefix), i_s.astype(np.uint64), i_t.astype(np.uint64), _row_hash(cf),
             _row_hash(loss_mask.astype(np.int64)), _row_hash(blocks.astype(np.int64) + 1))
    with np.errstate(over="ignore"):
        h = np.zeros(len(source), np.uint64)
        for part in parts:
            h = (h ^ part) * _MIX + np.uint64(0x632BE59BD9B4E019)
            h ^= h >> np.uint64(29)
    return h.view(np.int64)


def _draw(task: TaskFamily, source_split: Split, target_split: Split, m: int, rng):
    """(source trials, target trials, i_s, i_t) of ``m`` candidate pairs."""
    src, tgt = task.sample(source_split, m, rng), task.sample(target_split, m, rng)
    if len(src) < m or len(tgt) < m:
        raise ConfigError(f"split: task {task.family!r} has no "
                          f"{source_split if len(src) < m else target_split!r} trials")
    return src, tgt, _intervenable_positions(src.intervenable, rng), _intervenable_positions(tgt.intervenable, rng)


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


def _blocks(subsets, n: int, n_variables: int, rng) -> np.ndarray:
    """[n, n_variables] bool: the variables each pair intervenes on (``make_pairs``' ``subsets``)."""
    if subsets == "random" and n_variables > 1:
        pick = rng.integers(1, 2 ** n_variables, n)  # a non-empty subset, as a bit mask
        return (pick[:, None] >> np.arange(n_variables)[None, :]) & 1 == 1
    if isinstance(subsets, int) and not isinstance(subsets, bool):
        return np.arange(n_variables)[None, :].repeat(n, 0) == subsets
    return np.ones((n, n_variables), dtype=bool)


def _candidates(task, program: Program, variables, splits, m: int, subsets, rng, kinds: TokenKinds,
                value_map: dict | None) -> dict:
    """``m`` candidate pairs built to their counterfactuals and keys, as numpy arrays by field."""
    src, tgt, i_s, i_t = _draw(task, *splits, m, rng)
    b = np.arange(m)
    src_state, _ = program.trace(src.tokens, kinds, src.quantities)
    tgt_state, _ = program.trace(tgt.tokens, kinds, tgt.quantities)
    blocks = _blocks(subsets, m, len(variables), rng)
    state = {k: v[b, i_t] for k, v in tgt_state.items()}
    for j, var in enumerate(variables):
        given = src_state[var][b, i_s]
        if value_map and var in value_map:
            given = apply_map(given, value_map[var])
        state[var] = np.where(blocks[:, j], given, state[var])
    max_steps = src.tokens.shape[1] + tgt.tokens.shape[1]  # no continuation is longer than both trials
    cf, loss_mask = counterfactual(program, tgt.tokens, i_t, state, tgt.quantities, kinds, rng, max_steps)
    return {"source": src.tokens, "source_pos": i_s, "cf": cf, "target_pos": i_t, "loss_mask": loss_mask,
            "source_value": src_state[variables[0]][b, i_s], "blocks": blocks,
            "key": pair_keys(src.tokens, i_s, i_t, cf, loss_mask, blocks), "quantities": tgt.quantities}


def agrees(pred: np.ndarray, tokens: np.ndarray, kinds: TokenKinds) -> np.ndarray:
    """Where the program's prediction ``pred`` is the token: equal, or ``DEMO`` ("some demo token")
    against any demo token."""
    demo = np.atleast_1d(np.asarray(kinds.roles.get("demo", ()), dtype=np.int64))
    return (pred == tokens) | ((pred == DEMO) & np.isin(tokens, demo))


def make_pairs(task: TaskFamily, program: Program, variables: Sequence[str], n: int, seed: int,
               source_split: Split = "train", target_split: Split = "train",
               subsets: Literal["all", "random"] | int = "all", floor: bool = True,
               exclude: np.ndarray | torch.Tensor | None = None, value_map: dict[str, np.ndarray] | None = None,
               keep_unscored: bool = False) -> PairBatch:
    """``n`` counterfactual pairs, vectorised and reproducible from ``seed``; sources and targets
    are trials of the named splits of the task. With several variables, ``subsets`` says which
    each pair intervenes on: ``all`` of them, a ``random`` non-empty subset per pair (what makes
    each rotation block stand for its own variable when training), or only the variable with that
    index. ``floor`` marks the ``effective`` pairs (one more trace of the counterfactuals); pairs
    that are only trained on need not. ``exclude`` holds pair keys (``PairBatch.key``) none of the
    pairs may have: the pairs of the sets drawn before, when drawing held-out ones. ``value_map``
    (per variable, a table of ``pairs/permuted.py``) writes the image of the source's value into the
    target instead of the value itself. A candidate whose continuation scores nothing (Up-Up after
    its response count has passed the demo count) is dropped and another drawn in its place, unless
    ``keep_unscored`` (distinguishability compares such labels too: then exactly ``n`` are drawn)."""
    variables = program.check_variables(variables)
    program.check_task(task)
    rng = np.random.default_rng(seed)
    kinds = TokenKinds.of(task)
    if isinstance(exclude, torch.Tensor):
        exclude = exclude.cpu().numpy()
    need, rounds = n, 0
    while True:  # candidates in rounds until n of them are kept; one round of n when all are
        m = n if exclude is None and rounds == 0 else need + need // 2 + 64
        c = _candidates(task, program, variables, (source_split, target_split), m, subsets, rng, kinds, value_map)
        usable = np.ones(m, bool) if keep_unscored else c["loss_mask"].any(1)
        fresh = np.ones(m, bool) if exclude is None else ~np.isin(c["key"], exclude)
        keep = np.flatnonzero(usable & fresh)[:n]
        if len(keep) == n:
            break
        rounds, need = rounds + 1, 2 * need
        if rounds > 6:
            why = "with a scored answer" if exclude is None else f"outside the {len(exclude)} excluded ones"
            raise ConfigError(f"make_pairs: fewer than {n} pairs of {task.family!r} ({source_split} -> "
                              f"{target_split}) are left {why}; ask for fewer pairs")
    removed = None
    if exclude is not None and n:  # among the usable candidates up to the last one kept
        removed = 1.0 - n / int(usable[: keep[-1] + 1].sum())
    L = int((c["cf"][keep] != kinds.pad).sum(1).max(initial=1))  # the kept pairs' length: trailing padding left off
    cf, loss_mask = c["cf"][keep, :L], c["loss_mask"][keep, : L - 1]
    quantities = {k: v[keep] for k, v in c["quantities"].items()}
    if not keep_unscored and not loss_mask.any(1).all():
        raise RuntimeError("make_pairs: a counterfactual without a scored answer token")
    # the no-op floor: a pair whose scored labels are what the program, not intervened on, predicts
    # on the same counterfactual inputs measures nothing (a net that ignores the patch gets it right)
    effective = changed = None
    if floor:
        _, unintervened = program.trace(cf, kinds, quantities)
        changed = loss_mask & ~agrees(unintervened[:, :-1], cf[:, 1:], kinds)
        effective = changed.any(1)

    as_t = lambda x: torch.as_tensor(np.ascontiguousarray(x))
    first = quantities[task.quantities[0]] if task.quantities else np.zeros(n, np.int64)
    return PairBatch(**{k: as_t(c[k][keep]) for k in ("source", "source_pos", "target_pos", "source_value", "blocks",
                                                      "key")},
                     cf=as_t(cf), loss_mask=as_t(loss_mask), target_quantity=as_t(first),
                     effective=None if effective is None else as_t(effective),
                     changed=None if changed is None else as_t(changed), removed=removed)
