"""The numeric-equivalence family (docs/method.md#tasks): ``B D×n T R×n E``, right-padded with ``P``.

Three variants (Multi-, Single-, Same-Object). The void variant inserts ``U`` tokens into the demo
phase; each demo-phase step is a ``U`` with probability ``p_void`` and does not change the count,
so the demo phase ends with a demo token. The family's quantity is ``count``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from numsym_pl.tasks.base import Split, TaskConfigError, TaskFamily, Trials, Vocab, response_target_mask

Variant = Literal["multi", "single", "same"]
VARIANTS: tuple[str, ...] = ("multi", "single", "same")


@dataclass(frozen=True)
class NumEquivVocab(Vocab):
    """The family's token ids (fixed: checkpoints depend on them)."""

    names: tuple[str, ...] = ("P", "B", "E", "T", "R", "U", "D0", "D1", "D2")
    BOS, EOS, TRIG, RESP, VOID, D0, D1, D2 = 1, 2, 3, 4, 5, 6, 7, 8


VOCAB = NumEquivVocab()


@dataclass
class CountTrials(Trials):
    """Numeric-equivalence trials: the response targets of trial b are the tokens at
    ``trigger[b] + 1 .. trigger[b] + count[b] + 1`` (``count`` responses, then E)."""

    trigger: np.ndarray = None  # [N] index of T

    @property
    def count(self) -> np.ndarray:  # [N] objects in the demo phase
        return self.quantities["count"]

    @property
    def prompt_end(self) -> np.ndarray:
        return self.trigger


@dataclass
class NumericEquivalence(TaskFamily):
    """A numeric-equivalence task variant (docs/method.md#tasks).

    Args:
        variant: ``multi`` (demo tokens D0/D1/D2 uniformly, response R), ``single`` (demo D0,
            response R) or ``same`` (D0 for both demo and response).
        min_count: smallest object count used in training.
        max_count: largest object count used in training.
        heldout_counts: counts inside [min_count, max_count] never used for training; validated
            separately.
        ood_counts: counts outside the training range, evaluation only.
        p_void: probability that a demo-phase step emits the void token U (0 disables voids).
    """

    variant: Variant = "multi"
    min_count: int = 1
    max_count: int = 20
    heldout_counts: Sequence[int] = (4, 9, 14, 17)
    ood_counts: Sequence[int] = tuple(range(21, 31))
    p_void: float = 0.0
    vocab: NumEquivVocab = field(default=VOCAB, repr=False, init=False)
    quantities = ("count",)

    def __post_init__(self) -> None:
        self.heldout_counts = tuple(int(c) for c in self.heldout_counts)
        self.ood_counts = tuple(int(c) for c in self.ood_counts)
        if self.variant not in VARIANTS:
            raise TaskConfigError(f"variant: unknown task variant {self.variant!r}; choose one of {VARIANTS}")
        if self.min_count < 1:
            raise TaskConfigError(f"min_count: must be >= 1, got {self.min_count}")
        if self.max_count < self.min_count:
            raise TaskConfigError(
                f"max_count: empty count range [{self.min_count}, {self.max_count}] (min_count > max_count)"
            )
        bad = [c for c in self.heldout_counts if not self.min_count <= c <= self.max_count]
        if bad:
            raise TaskConfigError(
                f"heldout_counts: {bad} lie outside the training range [{self.min_count}, {self.max_count}]"
            )
        if not self.train_counts.size:
            raise TaskConfigError("heldout_counts: every count of the training range is held out")
        bad = [c for c in self.ood_counts if self.min_count <= c <= self.max_count or c < 1]
        if bad:
            raise TaskConfigError(f"ood_counts: {bad} are not outside the training range "
                                  f"[{self.min_count}, {self.max_count}]")
        if not 0.0 <= self.p_void < 1.0:
            raise TaskConfigError(f"p_void: must lie in [0, 1), got {self.p_void}")

    @property
    def family(self) -> str:
        return "numeric_equivalence"

    # ---- tokens of this variant -------------------------------------------------------------
    @property
    def demo_tokens(self) -> tuple[int, ...]:
        v = self.vocab
        return (v.D0, v.D1, v.D2) if self.variant == "multi" else (v.D0,)

    @property
    def response_token(self) -> int:
        return self.vocab.D0 if self.variant == "same" else self.vocab.RESP

    @property
    def token_roles(self) -> dict[str, int | tuple[int, ...]]:
        v = self.vocab
        return {"pad": v.PAD, "bos": v.BOS, "eos": v.EOS, "trigger": v.TRIG, "void": v.VOID,
                "demo": self.demo_tokens, "resp": self.response_token}

    @property
    def train_counts(self) -> np.ndarray:
        counts = np.arange(self.min_count, self.max_count + 1)
        return counts[~np.isin(counts, self.heldout_counts)]

    def _pool(self, split: Split) -> np.ndarray:
        pools = {"train": self.train_counts, "heldout": np.asarray(self.heldout_counts, dtype=np.int64),
                 "ood": np.asarray(self.ood_counts, dtype=np.int64)}
        if split not in pools:
            raise TaskConfigError(f"split: unknown split {split!r}; choose one of {list(pools)}")
        return pools[split]

    def has_split(self, split: Split) -> bool:
        return self._pool(split).size > 0

    # ---- sampling -----------------------------------------------------------------------------
    def sample(self, split: Split, n: int, rng: np.random.Generator) -> CountTrials:
        return self.trials(self.sample_counts(split, n, rng), rng)

    def sample_counts(self, which: Split, size: int, rng: np.random.Generator) -> np.ndarray:
        """Counts drawn uniformly from the training, held-out or OOD set."""
        pool = self._pool(which)
        if pool.size == 0:
            return np.zeros(0, dtype=np.int64)
        return rng.choice(pool, size=size).astype(np.int64)

    def trials(self, counts: np.ndarray, rng: np.random.Generator, length: int | None = None,
               voids: np.ndarray | None = None) -> CountTrials:
        """One trial per entry of ``counts`` (vectorised). ``length`` pads to a fixed width
        (it must fit the longest trial); by default the batch is padded to its longest trial.
        ``voids`` fixes the number of void tokens per trial (default: drawn with ``p_void``)."""
        v = self.vocab
        n = np.asarray(counts, dtype=np.int64)
        N = len(n)
        if voids is None:
            voids = rng.negative_binomial(n, 1.0 - self.p_void) if self.p_void > 0 else np.zeros(N, np.int64)
        voids = np.asarray(voids, dtype=np.int64)
        if (voids > 0).any() and (n < 1).any():
            raise ValueError("voids: a trial with voids needs at least one demo token")
        m = n + voids  # demo-phase length
        total = m + n + 3  # B, demo phase, T, R×n, E
        L = (int(total.max()) if N else 3) if length is None else length
        if N and total.max() > L:
            raise ValueError(f"length {L} is shorter than the longest sampled trial ({int(total.max())})")
        j = np.arange(L)[None, :]  # [1, L]
        m_, n_ = m[:, None], n[:, None]
        tokens = np.full((N, L), v.PAD, dtype=np.int64)
        tokens[:, 0] = v.BOS
        demo_ids = np.asarray(self.demo_tokens)[rng.integers(0, len(self.demo_tokens), size=(N, L))]
        in_demo = (j >= 1) & (j <= m_)
        if voids.any():
            # voids are spread uniformly over the first m-1 demo-phase steps (the last is a demo token)
            keys = rng.random((N, L))
            keys[~((j >= 1) & (j < m_))] = np.inf
            rank = np.argsort(np.argsort(keys, axis=1), axis=1)
            is_void = rank < voids[:, None]
            demo_ids = np.where(is_void, v.VOID, demo_ids)
        tokens = np.where(in_demo, demo_ids, tokens)
        tokens = np.where(j == m_ + 1, v.TRIG, tokens)
        tokens = np.where((j >= m_ + 2) & (j <= m_ + 1 + n_), self.response_token, tokens)
        tokens = np.where(j == m_ + 2 + n_, v.EOS, tokens)
        trigger = m + 1
        # an interchange may target a demo-phase input (demo or void) or a response input (not P, B, T, E)
        intervenable = ((j >= 1) & (j < trigger[:, None])) | ((j > trigger[:, None]) & (j <= (trigger + n)[:, None]))
        return CountTrials(tokens=tokens, scored=response_target_mask(trigger, n, L), intervenable=intervenable,
                           quantities={"count": n}, trigger=trigger)
