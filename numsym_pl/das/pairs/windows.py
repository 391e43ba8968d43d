"""Where a DAS swap at several positions patches (``Interchange.positions``): for each pair, the
target positions ``i_t - j`` of the offsets j it spans (each taking the source's state at
``i_s - j``), -1 where an offset patches nothing in that pair. ``with_window`` stores the window in
the pairs (``PairBatch.window``), so the source states and the patched forward read one definition.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from numsym_pl.das.pairs.counterfactual import PairBatch
from numsym_pl.errors import ConfigError


def window_size(pairs: PairBatch, positions: int | str) -> int:
    """P, the positions a multi-position swap spans on these pairs (``all``: the longest reach)."""
    if positions == "all":
        return int(torch.minimum(pairs.source_pos, pairs.target_pos).max()) + 1
    return int(positions)


def window_positions(pairs: PairBatch, P: int) -> torch.Tensor:
    """[N, P]: the target position ``i_t - j`` of offset j, or -1 where the source or the target
    sequence does not reach back j positions."""
    j = torch.arange(P, device=pairs.target_pos.device)
    reach = torch.minimum(pairs.source_pos, pairs.target_pos)[:, None]
    return torch.where(j <= reach, pairs.target_pos[:, None] - j, -1)


def demo_window(pairs: PairBatch, trigger: int) -> torch.Tensor:
    """[N, P] for ``positions: demo``: offset 0 (``i_t`` <- ``i_s``, as for one position) and every
    offset j whose target and source positions ``i_t - j``, ``i_s - j`` both lie in their trial's
    input (demo) phase, after BOS and before the first ``trigger`` token; -1 elsewhere."""
    def phase_end(tokens):  # the first trigger's position (the length if there is none)
        hit = tokens == trigger
        return torch.where(hit.any(1), hit.int().argmax(1), tokens.shape[1])

    end_s, end_t = phase_end(pairs.source), phase_end(pairs.cf)
    P = int(torch.minimum(pairs.source_pos, pairs.target_pos).max()) + 1
    j = torch.arange(P, device=pairs.target_pos.device)[None, :]
    t, s = pairs.target_pos[:, None] - j, pairs.source_pos[:, None] - j
    inside = (t >= 1) & (t < end_t[:, None]) & (s >= 1) & (s < end_s[:, None])
    window = torch.where(inside | (j == 0), t, -1)
    return window[:, : int((window >= 0).any(0).nonzero().max()) + 1]


def with_window(pairs: PairBatch, positions: int | str, trigger: int | None = None) -> PairBatch:
    """``pairs`` with the ``window`` a swap at ``positions`` patches (unchanged for one position)."""
    if positions == 1:
        return pairs
    if positions == "demo":
        if trigger is None:
            raise ConfigError("positions: 'demo' needs a task with a trigger token (token_roles['trigger']) "
                              "ending its input phase")
        window = demo_window(pairs, trigger)
    else:
        window = window_positions(pairs, window_size(pairs, positions))
    return replace(pairs, window=window)
