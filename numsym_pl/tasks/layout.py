"""Building blocks of the families whose trials read ``B <input phase> T <answer> E``.

A family draws each trial's input tokens (``inputs`` [N, K], ``n_inputs`` [N] of them) and its
answer (``answer`` [N, A], ``n_answer`` [N]); ``assemble`` adds voids to the input phase, the
begin, trigger and end tokens and the padding, vectorised. It is what the two-type counting,
arithmetic and comparison families share; numeric equivalence keeps its own layout (docs/method.md#tasks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numsym_pl.tasks.base import Split, TaskConfigError, TaskFamily, Trials, response_target_mask


@dataclass
class PhasedTrials(Trials):
    """Trials laid out ``B <input phase> T <answer> E``: ``trigger`` [N] is the index of ``T``, and
    the scored targets are the answer and the ``E``."""

    trigger: np.ndarray = None

    @property
    def prompt_end(self) -> np.ndarray:
        return self.trigger


def random_runs(n_first: np.ndarray, n_second: np.ndarray, first: int, second: int,
                rng) -> tuple[np.ndarray, np.ndarray]:
    """``n_first`` tokens ``first`` and ``n_second`` tokens ``second`` per row, interleaved in a
    uniformly random order: (tokens [N, K], lengths [N]), pad 0 after the end."""
    n = n_first + n_second
    K = max(int(n.max()) if len(n) else 0, 1)
    j = np.arange(K)[None, :]
    keys = np.where(j < n[:, None], rng.random((len(n), K)), np.inf)
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)
    out = np.where(rank < n_first[:, None], first, second)
    return np.where(j < n[:, None], out, 0).astype(np.int64), n.astype(np.int64)


def concat(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise concatenation of variable-length runs ``(tokens [N, K_i], lengths [N])``."""
    lengths = sum(n for _, n in parts)
    N, K = len(lengths), max(int(lengths.max()) if len(lengths) else 0, 1)
    out = np.zeros((N, K), np.int64)
    j = np.arange(K)[None, :]
    start = np.zeros(N, np.int64)
    for tokens, n in parts:
        rel = j - start[:, None]
        inside = (rel >= 0) & (rel < n[:, None])
        out = np.where(inside, np.take_along_axis(tokens, np.clip(rel, 0, tokens.shape[1] - 1), 1), out)
        start = start + n
    return out, lengths


def run(token: int, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``n`` copies of ``token`` per row."""
    K = max(int(n.max()) if len(n) else 0, 1)
    j = np.arange(K)[None, :]
    return np.where(j < n[:, None], token, 0).astype(np.int64), n.astype(np.int64)


def assemble(inputs: np.ndarray, n_inputs: np.ndarray, answer: np.ndarray, n_answer: np.ndarray, *, bos: int,
             trigger: int, eos: int, void: int, p_void: float, rng, answer_inputs: bool = True,
             quantities: dict | None = None) -> PhasedTrials:
    """``B <inputs with voids> T <answer> E``, right-padded with 0.

    Each input-phase step is a void with probability ``p_void`` and the phase ends with a real
    input (as in numeric equivalence), so the number of voids is negative-binomial in ``n_inputs``.
    An interchange may target an input-phase position and, with ``answer_inputs``, an answer
    input (the answer tokens read back); without, the trigger instead (a one-token answer, whose
    deciding state is the trigger's)."""
    N = len(n_inputs)
    voids = rng.negative_binomial(np.maximum(n_inputs, 1), 1.0 - p_void) if p_void > 0 else np.zeros(N, np.int64)
    voids = np.where(n_inputs > 0, voids, 0)
    m = n_inputs + voids  # input-phase length
    total = m + n_answer + 3
    L = int(total.max()) if N else 3
    j = np.arange(L)[None, :]
    slot = j - 1  # index inside the input phase
    in_phase = (slot >= 0) & (slot < m[:, None])
    if voids.any():  # voids spread uniformly over the first m - 1 steps; the last is a real input
        keys = np.where((slot >= 0) & (slot < (m - 1)[:, None]), rng.random((N, L)), np.inf)
        is_void = (np.argsort(np.argsort(keys, axis=1), axis=1) < voids[:, None]) & in_phase
    else:
        is_void = np.zeros((N, L), bool)
    real_index = np.cumsum(in_phase & ~is_void, 1) - 1
    real = np.take_along_axis(inputs, np.clip(real_index, 0, inputs.shape[1] - 1), 1)
    tokens = np.zeros((N, L), np.int64)
    tokens[:, 0] = bos
    tokens = np.where(in_phase, np.where(is_void, void, real), tokens)
    t = (m + 1)[:, None]
    tokens = np.where(j == t, trigger, tokens)
    rel = j - t - 1
    in_answer = (rel >= 0) & (rel < n_answer[:, None])
    tokens = np.where(in_answer, np.take_along_axis(answer, np.clip(rel, 0, answer.shape[1] - 1), 1), tokens)
    tokens = np.where(rel == n_answer[:, None], eos, tokens)
    trig = m + 1
    intervenable = (j >= 1) & (j < t) | (in_answer if answer_inputs else (j == t))
    return PhasedTrials(tokens=tokens, scored=response_target_mask(trig, n_answer, L), intervenable=intervenable,
                        quantities=dict(quantities or {}), trigger=trig)


def combo_pools(grid: np.ndarray, heldout: np.ndarray, ood: np.ndarray) -> dict[Split, np.ndarray]:
    """The train / held-out / OOD pools of a family whose trials are fixed by a tuple of values:
    ``grid`` [G, k] every in-range tuple, ``heldout`` [H, k] the tuples kept out of training,
    ``ood`` [O, k] the out-of-range tuples (evaluation only)."""
    held = (grid[:, None, :] == heldout[None, :, :]).all(-1).any(1) if len(heldout) else np.zeros(len(grid), bool)
    pools = {"train": grid[~held], "heldout": grid[held], "ood": ood}
    if not len(pools["train"]):
        raise TaskConfigError("heldout: every combination of the training range is held out; "
                              "nothing is left to train on")
    return pools


def default_heldout(grid: np.ndarray, fraction: float = 0.1, seed: int = 0) -> list[list[int]]:
    """A fixed ``fraction`` of ``grid``'s tuples (the same for every run: drawn from its own seed)."""
    k = max(1, int(round(fraction * len(grid))))
    pick = np.sort(np.random.default_rng(seed).choice(len(grid), size=k, replace=False))
    return grid[pick].tolist()


def check_heldout(heldout, grid: np.ndarray, width: int) -> np.ndarray:
    """``heldout`` as an [H, width] array of tuples inside ``grid``, or a named error."""
    arr = np.asarray(heldout, dtype=np.int64).reshape(-1, width) if len(heldout) else np.zeros((0, width), np.int64)
    inside = (arr[:, None, :] == grid[None, :, :]).all(-1).any(1) if len(arr) else np.zeros(0, bool)
    if not inside.all():
        raise TaskConfigError(f"heldout: {arr[~inside].tolist()} are not combinations of the training range")
    return arr


def draw(pool: np.ndarray, n: int, rng, weights: np.ndarray | None = None) -> np.ndarray:
    """``n`` rows of ``pool`` drawn with replacement (uniformly, or by ``weights``)."""
    if not len(pool):
        return np.zeros((0, pool.shape[1]), np.int64)
    p = None if weights is None else weights / weights.sum()
    return pool[rng.choice(len(pool), size=n, p=p)]


class ComboFamily(TaskFamily):
    """Base of a family whose trial is fixed by a tuple of values (``quantities``, in order) plus
    random order and voids: a subclass gives ``grid()`` (every in-range tuple), ``ood_grid()`` and
    ``build(values [N, k], rng)``, and keeps ``heldout`` and ``p_void`` attributes; ``weights(pool)``
    may reweight the draw (default uniform)."""

    def grid(self) -> np.ndarray:
        raise NotImplementedError

    def ood_grid(self) -> np.ndarray:
        raise NotImplementedError

    def build(self, values: np.ndarray, rng) -> PhasedTrials:
        raise NotImplementedError

    def weights(self, pool: np.ndarray) -> np.ndarray | None:
        return None

    def _check_common(self) -> None:
        if not 0.0 <= self.p_void < 1.0:
            raise TaskConfigError(f"p_void: must lie in [0, 1), got {self.p_void}")
        grid = self.grid()
        if self.heldout is None:
            self.heldout = default_heldout(grid)
        self.heldout = check_heldout(self.heldout, grid, grid.shape[1]).tolist()
        self._pools = combo_pools(grid, np.asarray(self.heldout, np.int64).reshape(-1, grid.shape[1]), self.ood_grid())

    def pool(self, split: Split) -> np.ndarray:
        if split not in self._pools:
            raise TaskConfigError(f"split: unknown split {split!r}; choose one of {list(self._pools)}")
        return self._pools[split]

    def has_split(self, split: Split) -> bool:
        return len(self.pool(split)) > 0

    def sample(self, split: Split, n: int, rng: np.random.Generator) -> PhasedTrials:
        pool = self.pool(split)
        return self.build(draw(pool, n, rng, self.weights(pool)), rng)
