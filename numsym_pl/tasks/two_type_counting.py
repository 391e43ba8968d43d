"""Two-type counting, numbers bound to types (docs/method.md#harder-families): ``B``, ``n_a`` × ``DA`` and
``n_b`` × ``DB`` interleaved at random (voids ``U`` among them with ``p_void``), ``T``, then ``n_a`` × ``RA``,
``n_b`` × ``RB``, ``E``. The quantities are ``n_a`` and ``n_b``; the answer is every token after
``T``. A fixed tenth of the (n_a, n_b) grid is held out of training; OOD trials have a count above
the training range (evaluation only). Programs: ``numsym_pl.programs.two_type``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from numsym_pl.tasks.base import TaskConfigError, Vocab
from numsym_pl.tasks.layout import ComboFamily, assemble, concat, random_runs, run


@dataclass(frozen=True)
class TwoTypeVocab(Vocab):
    names: tuple[str, ...] = ("P", "B", "E", "T", "U", "DA", "DB", "RA", "RB")
    BOS, EOS, TRIG, VOID, DA, DB, RA, RB = 1, 2, 3, 4, 5, 6, 7, 8


@dataclass
class TwoTypeCounting(ComboFamily):
    """Two-type counting.

    Args:
        max_count: largest ``n_a`` and ``n_b`` in training (each from 0; never both 0).
        heldout: (n_a, n_b) combinations never trained on, validated separately; default a fixed
            10 % of the grid.
        ood_max: OOD trials have a count in ``max_count + 1 .. ood_max`` (and the other in range).
        p_void: probability that an input-phase step is a void token ``U``.
    """

    max_count: int = 10
    heldout: Optional[Sequence[Sequence[int]]] = None
    ood_max: int = 15
    p_void: float = 0.0
    vocab: TwoTypeVocab = field(default=TwoTypeVocab(), repr=False, init=False)
    quantities = ("n_a", "n_b")

    def __post_init__(self) -> None:
        if self.max_count < 1:
            raise TaskConfigError(f"max_count: must be >= 1, got {self.max_count}")
        if self.ood_max < self.max_count:
            raise TaskConfigError(f"ood_max: must be >= max_count ({self.max_count}), got {self.ood_max}")
        self._check_common()

    @property
    def family(self) -> str:
        return "two_type_counting"

    @property
    def token_roles(self) -> dict:
        v = self.vocab
        return {"pad": v.PAD, "bos": v.BOS, "eos": v.EOS, "trigger": v.TRIG, "void": v.VOID, "demo_a": v.DA,
                "demo_b": v.DB, "resp_a": v.RA, "resp_b": v.RB, "inputs": (v.DA, v.DB, v.VOID, v.TRIG)}

    def grid(self) -> np.ndarray:
        a, b = np.meshgrid(np.arange(self.max_count + 1), np.arange(self.max_count + 1), indexing="ij")
        g = np.stack([a.ravel(), b.ravel()], 1)
        return g[g.sum(1) > 0]

    def ood_grid(self) -> np.ndarray:
        a, b = np.meshgrid(np.arange(self.ood_max + 1), np.arange(self.ood_max + 1), indexing="ij")
        g = np.stack([a.ravel(), b.ravel()], 1)
        return g[g.max(1) > self.max_count]

    def build(self, values: np.ndarray, rng) -> "PhasedTrials":  # noqa: F821 (layout.PhasedTrials)
        v = self.vocab
        n_a, n_b = values[:, 0].astype(np.int64), values[:, 1].astype(np.int64)
        inputs, n_inputs = random_runs(n_a, n_b, v.DA, v.DB, rng)
        answer, n_answer = concat([run(v.RA, n_a), run(v.RB, n_b)])
        return assemble(inputs, n_inputs, answer, n_answer, bos=v.BOS, trigger=v.TRIG, eos=v.EOS, void=v.VOID,
                        p_void=self.p_void, rng=rng, quantities={"n_a": n_a, "n_b": n_b})
