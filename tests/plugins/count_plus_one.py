"""A toy task family, defined in one file outside the package: ``B D×n T R×(n+1) E``."""

from dataclasses import dataclass

import numpy as np

from numsym_pl.tasks import TaskConfigError, TaskFamily, Trials, Vocab


@dataclass
class CountPlusOne(TaskFamily):
    """One more response than the demo phase showed objects. Args: max_count (counts start at 1),
    heldout_counts (never trained on), ood_counts (evaluation only)."""

    max_count: int = 8
    heldout_counts: tuple[int, ...] = (3,)
    ood_counts: tuple[int, ...] = (9,)
    vocab = Vocab(("P", "B", "E", "T", "R", "D"))
    quantities = ("count",)
    token_roles = {"pad": 0, "bos": 1, "eos": 2, "trigger": 3, "resp": 4, "demo": (5,)}

    def __post_init__(self):
        if any(not 1 <= c <= self.max_count for c in self.heldout_counts):
            raise TaskConfigError(f"heldout_counts: {list(self.heldout_counts)} must lie in [1, {self.max_count}]")

    def _pool(self, split):
        train = [c for c in range(1, self.max_count + 1) if c not in self.heldout_counts]
        return np.asarray({"train": train, "heldout": self.heldout_counts, "ood": self.ood_counts}[split], np.int64)

    def has_split(self, split):
        return self._pool(split).size > 0

    def sample(self, split, n, rng):
        count = rng.choice(self._pool(split), n) if self.has_split(split) else np.zeros(0, np.int64)
        j, c = np.arange(2 * int(count.max(initial=0)) + 5)[None], count[:, None]
        tokens = np.select([j == 0, j <= c, j == c + 1, j <= 2 * c + 2, j == 2 * c + 3], [1, 5, 3, 4, 2], 0)
        t = j[:, :-1]
        intervenable = (j >= 1) & (j <= 2 * c + 2) & (j != c + 1)  # demo and response inputs
        return Trials(tokens, scored=(t >= c + 1) & (t <= 2 * c + 2), intervenable=intervenable,
                      quantities={"count": count})
