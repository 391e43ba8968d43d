"""Gradience (SPEC §5): how graded is the aligned count, and how does precision fall with number?

- **IIA per source value and per target count** of the learned rotation (held-out pairs).
- **Intervention magnitude**: the count direction is the least-squares slope of the aligned
  subspace's coordinates on the count, over states right after ``T``; moving the state at ``T`` by
  ``alpha`` units of it (fractional and integer ``alpha``) and decoding greedily shows whether the
  response length moves by ``alpha`` (symbol-like: by round(alpha)) and how spread it is.
- **Precision by number**: the spread (sd) and exactness of the response length per count, at
  ``alpha = 0`` (the net's own behaviour, counts up to the OOD range) and over the magnitudes.
"""

from __future__ import annotations

import numpy as np
import torch

from numsym_pl.analysis.ood_interventions import by_group
from numsym_pl.das.alignment import Alignment
from numsym_pl.das.intervention import SubspaceSwap
from numsym_pl.das.pairs import make_pairs
from numsym_pl.das.search import pair_correct, source_states
from numsym_pl.lit_module import greedy_decode
from numsym_pl.models.interface import SequenceModel
from numsym_pl.programs import get_program
from numsym_pl.seeding import derive, rng
from numsym_pl.tasks import VOCAB, NumericEquivalence

ALPHAS = tuple(np.round(np.arange(-3.0, 3.01, 0.5), 2))


@torch.no_grad()
def count_direction(net: SequenceModel, task: NumericEquivalence, site: str, swap: SubspaceSwap, block: int = 0, n: int = 1000,
                    seed: int = 0) -> torch.Tensor:
    """[d]: the state change that raises the aligned count by one (least squares over T states)."""
    trials = task.sample("train", n, rng(seed, "count_direction"))
    tokens = torch.as_tensor(trials.tokens)
    h = net.states(tokens, site)[torch.arange(n), torch.as_tensor(trials.trigger)].float()  # [n, d]
    W = swap.weight.detach().float()
    cols = W[:, block * swap.subspace: (block + 1) * swap.subspace]  # [d, k]
    z = h @ cols  # [n, k] aligned coordinates
    X = torch.stack([torch.ones(n), torch.as_tensor(trials.count, dtype=torch.float32)], 1)  # [n, 2]
    slope = torch.linalg.lstsq(X, z).solution[1]  # [k] per unit of count
    return cols @ slope  # back to the state's basis


@torch.no_grad()
def greedy_response_length(net: SequenceModel, tokens: torch.Tensor, trigger: torch.Tensor, site: str,
                           patch_fn, max_new: int, response_token: int = VOCAB.RESP) -> torch.Tensor:
    """[B] response tokens written after ``T`` (greedy, the state at ``T`` patched by ``patch_fn``)
    before the first other token; ``max_new`` if the net never stops."""
    prefix = torch.where(torch.arange(tokens.shape[1])[None] <= trigger[:, None], tokens, VOCAB.PAD)
    written = greedy_decode(net, prefix, trigger, max_new,
                            forward=lambda buf: net.forward_patched(buf, site, trigger, patch_fn))
    return (written == response_token).long().cumprod(1).sum(1)


def intervention_magnitude(net: SequenceModel, task: NumericEquivalence, site: str, direction: torch.Tensor, alphas=ALPHAS,
                           per_count: int = 8, seed: int = 0) -> dict:
    """Response length after moving the T state by ``alpha`` count units, for training counts and
    (at ``alpha = 0``) OOD counts: {"alphas", "shift_mean", "shift_sd", "exact" (length == count +
    round(alpha)), "by_count": {count: {"sd", "exact"}} over every alpha, "own": {count: exact at 0}}."""
    gen = rng(seed, "magnitude")
    counts = np.repeat(task.train_counts, per_count)
    trials = task.trials(counts, gen)
    tokens, trigger = torch.as_tensor(trials.tokens), torch.as_tensor(trials.trigger)
    count = torch.as_tensor(trials.count)
    max_new = int(count.max()) + int(np.ceil(max(abs(a) for a in alphas))) + 4
    shift_mean, shift_sd, exact, errors = [], [], [], []
    for alpha in alphas:
        move = float(alpha) * direction
        length = greedy_response_length(net, tokens, trigger, site, lambda h: h + move.to(h.dtype), max_new,
                                        task.response_token)
        shift = (length - count).float()
        err = shift - float(alpha)
        shift_mean.append(float(shift.mean()))
        shift_sd.append(float(shift.std()))
        exact.append(float((length == count + int(np.round(alpha))).float().mean()))
        errors.append(err)
    errors = torch.stack(errors)  # [n_alpha, N]
    by_count = {int(c): {"sd": float(errors[:, count == c].std()),
                         "exact": float((errors[:, count == c].abs() < 0.51).float().mean())}
                for c in torch.unique(count)}
    ood = np.repeat(np.asarray(sorted({*task.train_counts, *task.heldout_counts, *task.ood_counts})), per_count)
    own_trials = task.trials(ood, gen)
    own_count = torch.as_tensor(own_trials.count)
    own_len = greedy_response_length(net, torch.as_tensor(own_trials.tokens), torch.as_tensor(own_trials.trigger),
                                     site, lambda h: h, int(own_count.max()) + 4, task.response_token)
    own = by_group(own_len == own_count, own_count)
    return {"alphas": [float(a) for a in alphas], "shift_mean": shift_mean, "shift_sd": shift_sd, "exact": exact,
            "by_count": by_count, "own": own}


def gradience(net: SequenceModel, task: NumericEquivalence, alignment: Alignment, swap: SubspaceSwap, n: int = 1000,
              seed: int = 0) -> dict:
    """Everything in the module docstring for an alignment whose first block is a count."""
    pairs = make_pairs(task, get_program(alignment.program), alignment.variables, n, seed=derive(seed, "gradience"))
    correct = pair_correct(net, swap, alignment.site, pairs, source_states(net, pairs, alignment.site))
    direction = count_direction(net, task, alignment.site, swap, block=0, seed=seed)
    return {"per_source_value": by_group(correct, pairs.source_value),
            "per_target_count": by_group(correct, pairs.target_quantity),
            "direction_norm": float(direction.norm()),
            "magnitude": intervention_magnitude(net, task, alignment.site, direction, seed=seed)}
