"""Comparison (docs/method.md#harder-families): ``B D×a S D×b T X E`` with ``X`` ``GT``, ``LT`` or ``EQ`` as a > b,
a < b or a = b, voids ``U`` in the input phase with ``p_void``. The three answers are drawn equally often
(uniform (a, b) would make ``EQ`` one trial in fifteen). The quantities are ``relation`` (0 LT, 1 EQ,
2 GT), ``a`` and ``b``; a fixed tenth of the (a, b) grid is held out of training; OOD trials have
a count above the training range (evaluation only). An interchange may target an input-phase
position or the trigger (whose state decides ``X``). Programs: ``numsym_pl.programs.comparison``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from numsym_pl.tasks.base import TaskConfigError, Vocab
from numsym_pl.tasks.layout import ComboFamily, assemble, concat, run


@dataclass(frozen=True)
class ComparisonVocab(Vocab):
    names: tuple[str, ...] = ("P", "B", "E", "T", "U", "D", "S", "GT", "LT", "EQ")
    BOS, EOS, TRIG, VOID, D, S, GT, LT, EQ = 1, 2, 3, 4, 5, 6, 7, 8, 9


@dataclass
class Comparison(ComboFamily):
    """Which of two counted groups is larger.

    Args:
        min_count: smallest ``a`` and ``b`` in training.
        max_count: largest ``a`` and ``b`` in training.
        heldout: (a, b) combinations never trained on, validated separately; default a fixed 10 %.
        ood_max: OOD trials have a count in ``max_count + 1 .. ood_max``.
        p_void: probability that an input-phase step is a void token ``U``.
    """

    min_count: int = 1
    max_count: int = 15
    heldout: Optional[Sequence[Sequence[int]]] = None
    ood_max: int = 20
    p_void: float = 0.0
    vocab: ComparisonVocab = field(default=ComparisonVocab(), repr=False, init=False)
    quantities = ("relation", "a", "b")

    def __post_init__(self) -> None:
        if self.min_count < 0:
            raise TaskConfigError(f"min_count: must be >= 0, got {self.min_count}")
        if self.max_count <= self.min_count:
            raise TaskConfigError(f"max_count: the range [{self.min_count}, {self.max_count}] "
                                  "needs two values to compare")
        if self.ood_max < self.max_count:
            raise TaskConfigError(f"ood_max: must be >= max_count ({self.max_count}), got {self.ood_max}")
        self._check_common()

    @property
    def family(self) -> str:
        return "comparison"

    @property
    def token_roles(self) -> dict:
        v = self.vocab
        return {"pad": v.PAD, "bos": v.BOS, "eos": v.EOS, "trigger": v.TRIG, "void": v.VOID, "demo": v.D,
                "sep": v.S, "gt": v.GT, "lt": v.LT, "eq": v.EQ, "inputs": (v.D, v.S, v.VOID, v.TRIG)}

    def _combos(self, lo: int, hi: int) -> np.ndarray:
        a, b = np.meshgrid(np.arange(lo, hi + 1), np.arange(lo, hi + 1), indexing="ij")
        return np.stack([a.ravel(), b.ravel()], 1)

    def grid(self) -> np.ndarray:
        return self._combos(self.min_count, self.max_count)

    def ood_grid(self) -> np.ndarray:
        g = self._combos(self.min_count, self.ood_max)
        return g[g.max(1) > self.max_count]

    def weights(self, pool: np.ndarray) -> np.ndarray:
        """Each relation equally likely, uniform within it (over the relations the pool has)."""
        rel = np.sign(pool[:, 0] - pool[:, 1])
        counts = {r: (rel == r).sum() for r in (-1, 0, 1)}
        return np.array([1.0 / counts[r] for r in rel])

    def build(self, values: np.ndarray, rng):
        v = self.vocab
        a, b = values[:, 0].astype(np.int64), values[:, 1].astype(np.int64)
        relation = np.sign(a - b) + 1
        inputs, n_inputs = concat([run(v.D, a), (np.full((len(a), 1), v.S), np.ones_like(a)), run(v.D, b)])
        answer = np.array([v.LT, v.EQ, v.GT])[relation][:, None]
        return assemble(inputs, n_inputs, answer, np.ones_like(a), bos=v.BOS, trigger=v.TRIG, eos=v.EOS, void=v.VOID,
                        p_void=self.p_void, rng=rng, answer_inputs=False,
                        quantities={"relation": relation, "a": a, "b": b})
