"""A program's variables with their values permuted: the labels of a causal model that should not
align, for the fitted null of ``das/controls.py``.

The permuted model is the program itself, except that an interchange writes ``perm(v)`` into the
target's state where the program writes the source's value ``v``. ``perm`` is a derangement (no
value maps to itself) of the values the variable takes at the task's intervenable positions, drawn
from a seed; a value outside that range maps to itself. A map is a table, [2, K] int64: row 0 the
values ``lo .. hi``, row 1 their images (``apply_map``).
"""

from __future__ import annotations

import numpy as np

from numsym_pl.errors import ConfigError
from numsym_pl.programs import Program, TokenKinds
from numsym_pl.tasks.base import Split, TaskFamily

#: trials traced to find the values a variable takes
RANGE_TRIALS = 4096


def derangement(k: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation of ``range(k)`` without a fixed point, uniform over such permutations (drawn
    until one has none: about e draws)."""
    if k < 2:
        raise ConfigError(f"derangement: {k} value(s) cannot be permuted without a fixed point")
    while True:
        perm = rng.permutation(k)
        if (perm != np.arange(k)).all():
            return perm


def value_range(task: TaskFamily, program: Program, variable: str, rng: np.random.Generator,
                split: Split = "train") -> tuple[int, int]:
    """(lo, hi): the least and greatest value ``variable`` takes at the intervenable positions of
    ``RANGE_TRIALS`` trials of the split."""
    trials = task.sample(split, RANGE_TRIALS, rng)
    state, _ = program.trace(trials.tokens, TokenKinds.of(task), trials.quantities)
    values = state[variable][trials.intervenable]
    return int(values.min()), int(values.max())


def permuted_values(task: TaskFamily, program: Program, variables, seed: int) -> dict[str, np.ndarray]:
    """Per variable, a derangement of its value range as a table (``apply_map``), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    out = {}
    for var in program.check_variables(variables):
        lo, hi = value_range(task, program, var, rng)
        if hi == lo:
            raise ConfigError(f"null: variable {var!r} of {program.name!r} takes one value ({lo}) on task "
                              f"{task.family!r}; there is no permutation to fit against")
        values = np.arange(lo, hi + 1, dtype=np.int64)
        out[var] = np.stack([values, values[derangement(len(values), rng)]])
    return out


def apply_map(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``values`` through a map's table: the image of each value in ``table[0]``, itself elsewhere."""
    values = np.asarray(values)
    at = np.clip(values - table[0, 0], 0, table.shape[1] - 1)
    inside = (values >= table[0, 0]) & (values <= table[0, -1])
    return np.where(inside, table[1, at], values)


def map_record(value_map: dict[str, np.ndarray]) -> dict:
    """A value map as JSON: ``{variable: {"values": [...], "images": [...]}}``."""
    return {var: {"values": t[0].tolist(), "images": t[1].tolist()} for var, t in value_map.items()}
