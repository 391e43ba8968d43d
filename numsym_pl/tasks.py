"""Numeric-equivalence tasks: vocabulary, task variants and a vectorised trial sampler.

A trial is ``B D×n T R×n E`` right-padded with ``P`` (SPEC §1). The void variant inserts ``U``
tokens into the demo phase; each demo-phase step is a ``U`` with probability ``p_void`` and does
not change the count, so the demo phase ends with a demo token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from numsym_pl.errors import ConfigError

Variant = Literal["multi", "single", "same"]
VARIANTS: tuple[str, ...] = ("multi", "single", "same")


class TaskConfigError(ConfigError):
    """An invalid task setting; the message starts with the name of the offending field."""


@dataclass(frozen=True)
class Vocab:
    """Token ids, shared by every variant so that one model interface fits all tasks."""

    PAD: int = 0
    BOS: int = 1
    EOS: int = 2
    TRIG: int = 3
    RESP: int = 4
    VOID: int = 5
    D0: int = 6
    D1: int = 7
    D2: int = 8
    names: tuple[str, ...] = ("P", "B", "E", "T", "R", "U", "D0", "D1", "D2")

    @property
    def size(self) -> int:
        return len(self.names)

    def decode(self, ids: Sequence[int]) -> str:
        """Human-readable trial, pads dropped: ``'B D0 D2 T R R E'``."""
        return " ".join(self.names[i] for i in ids if i != self.PAD)


VOCAB = Vocab()


@dataclass
class Trials:
    """A batch of trials. ``tokens`` is right-padded; the response targets of trial b are the
    tokens at ``trigger[b] + 1 .. trigger[b] + count[b] + 1`` (``count`` responses, then E)."""

    tokens: np.ndarray  # [N, L] int64
    count: np.ndarray  # [N] objects in the demo phase
    trigger: np.ndarray  # [N] index of T

    def __len__(self) -> int:
        return len(self.count)


@dataclass
class Task:
    """A numeric-equivalence task variant (SPEC §1).

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
    vocab: Vocab = field(default=VOCAB, repr=False)

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
            raise TaskConfigError(f"ood_counts: {bad} are not outside the training range [{self.min_count}, {self.max_count}]")
        if not 0.0 <= self.p_void < 1.0:
            raise TaskConfigError(f"p_void: must lie in [0, 1), got {self.p_void}")

    # ---- tokens of this variant -------------------------------------------------------------
    @property
    def demo_tokens(self) -> tuple[int, ...]:
        v = self.vocab
        return (v.D0, v.D1, v.D2) if self.variant == "multi" else (v.D0,)

    @property
    def response_token(self) -> int:
        return self.vocab.D0 if self.variant == "same" else self.vocab.RESP

    @property
    def train_counts(self) -> np.ndarray:
        counts = np.arange(self.min_count, self.max_count + 1)
        return counts[~np.isin(counts, self.heldout_counts)]

    # ---- sampling -----------------------------------------------------------------------------
    def sample(self, counts: np.ndarray, rng: np.random.Generator, length: int | None = None,
               voids: np.ndarray | None = None) -> Trials:
        """Sample one trial per entry of ``counts`` (vectorised). ``length`` pads to a fixed width
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
        L = int(total.max()) if length is None else length
        if total.max() > L:
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
        return Trials(tokens=tokens, count=n, trigger=m + 1)

    def sample_counts(self, which: Literal["train", "heldout", "ood"], size: int, rng: np.random.Generator) -> np.ndarray:
        """Counts drawn uniformly from the training, held-out or OOD set."""
        pool = {"train": self.train_counts, "heldout": np.asarray(self.heldout_counts),
                "ood": np.asarray(self.ood_counts)}[which]
        if pool.size == 0:
            return np.zeros(0, dtype=np.int64)
        return rng.choice(pool, size=size).astype(np.int64)

    def max_length(self, max_count: int | None = None) -> int:
        """Length of the longest trial without voids (voids add a random amount)."""
        c = max(self.max_count, *self.ood_counts) if max_count is None else max_count
        return 2 * c + 3


def response_target_mask(trigger, count, length: int):
    """[N, length-1] bool mask over next-token *targets* (target t is token t+1) that belong to the
    response phase: the ``count`` responses and the E. Works on numpy arrays and torch tensors."""
    import torch

    if isinstance(trigger, torch.Tensor):
        t = torch.arange(length - 1, device=trigger.device)[None, :]
    else:
        t = np.arange(length - 1)[None, :]
    lo = trigger[:, None]  # target index of the first R is trigger (input T predicts R)
    return (t >= lo) & (t <= lo + count[:, None])
