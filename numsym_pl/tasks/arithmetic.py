"""Addition and subtraction (docs/method.md#harder-families): ``B D×a OP D×b T R×(a op b) E`` with ``OP`` ``PLUS`` or
``MINUS`` (``a >= b`` for ``MINUS``; a zero answer is ``T E``), voids ``U`` in the input phase with
``p_void``. Without voids the position of ``T`` gives a + b away, so the transformer configs train
with them. The quantities are ``a``, ``b`` and ``op`` (1 PLUS, 2 MINUS) and the ``result``; a fixed
tenth of the (a, b, op) grid is held out of training; OOD trials have an operand above the
training range (evaluation only). Programs: ``numsym_pl.programs.arithmetic``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from numsym_pl.tasks.base import TaskConfigError, Vocab
from numsym_pl.tasks.layout import ComboFamily, assemble, concat, run

PLUS, MINUS = 1, 2  # the ``op`` quantity


@dataclass(frozen=True)
class ArithmeticVocab(Vocab):
    names: tuple[str, ...] = ("P", "B", "E", "T", "U", "D", "PLUS", "MINUS", "R")
    BOS, EOS, TRIG, VOID, D, PLUS, MINUS, R = 1, 2, 3, 4, 5, 6, 7, 8


@dataclass
class Arithmetic(ComboFamily):
    """Addition and subtraction of two counted operands.

    Args:
        max_operand: largest ``a`` and ``b`` in training (each from 0).
        ops: the operators trained and evaluated (``plus``, ``minus``).
        heldout: (a, b, op) combinations never trained on (op 1 PLUS, 2 MINUS), validated
            separately; default a fixed 10 % of the grid.
        ood_max: OOD trials have an operand in ``max_operand + 1 .. ood_max``.
        p_void: probability that an input-phase step is a void token ``U``.
    """

    max_operand: int = 10
    ops: Sequence[str] = ("plus", "minus")
    heldout: Optional[Sequence[Sequence[int]]] = None
    ood_max: int = 15
    p_void: float = 0.0
    vocab: ArithmeticVocab = field(default=ArithmeticVocab(), repr=False, init=False)
    quantities = ("result", "a", "b", "op")

    def __post_init__(self) -> None:
        self.ops = tuple(self.ops)
        if self.max_operand < 1:
            raise TaskConfigError(f"max_operand: must be >= 1, got {self.max_operand}")
        if not self.ops or set(self.ops) - {"plus", "minus"} or len(set(self.ops)) != len(self.ops):
            raise TaskConfigError(f"ops: a non-empty subset of ['plus', 'minus'] without repeats, got {list(self.ops)}")
        if self.ood_max < self.max_operand:
            raise TaskConfigError(f"ood_max: must be >= max_operand ({self.max_operand}), got {self.ood_max}")
        self._check_common()

    @property
    def family(self) -> str:
        return "arithmetic"

    @property
    def token_roles(self) -> dict:
        v = self.vocab
        return {"pad": v.PAD, "bos": v.BOS, "eos": v.EOS, "trigger": v.TRIG, "void": v.VOID, "demo": v.D,
                "plus": v.PLUS, "minus": v.MINUS, "resp": v.R, "inputs": (v.D, v.PLUS, v.MINUS, v.VOID, v.TRIG)}

    def _combos(self, hi: int) -> np.ndarray:
        a, b = np.meshgrid(np.arange(hi + 1), np.arange(hi + 1), indexing="ij")
        a, b = a.ravel(), b.ravel()
        out = []
        if "plus" in self.ops:
            out.append(np.stack([a, b, np.full_like(a, PLUS)], 1))
        if "minus" in self.ops:
            keep = a >= b
            out.append(np.stack([a[keep], b[keep], np.full(keep.sum(), MINUS)], 1))
        return np.concatenate(out)

    def grid(self) -> np.ndarray:
        return self._combos(self.max_operand)

    def ood_grid(self) -> np.ndarray:
        g = self._combos(self.ood_max)
        return g[g[:, :2].max(1) > self.max_operand]

    def build(self, values: np.ndarray, rng):
        v = self.vocab
        a, b, op = (values[:, i].astype(np.int64) for i in range(3))
        result = np.where(op == PLUS, a + b, a - b)
        op_token = np.where(op == PLUS, v.PLUS, v.MINUS)[:, None]
        inputs, n_inputs = concat([run(v.D, a), (op_token, np.ones_like(a)), run(v.D, b)])
        answer, n_answer = run(v.R, result)
        return assemble(inputs, n_inputs, answer, n_answer, bos=v.BOS, trigger=v.TRIG, eos=v.EOS, void=v.VOID,
                        p_void=self.p_void, rng=rng, quantities={"result": result, "a": a, "b": b, "op": op})
