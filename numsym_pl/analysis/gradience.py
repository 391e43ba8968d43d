"""Gradience (docs/method.md#analyses): how graded is the aligned count, and how does precision fall with number?

- **IIA per source value and per target count** of the learned rotation (held-out pairs).
- **Intervention magnitude**: the count direction is the least-squares slope of the aligned
  subspace's coordinates on the program's count, over the positions DAS trains on; moving the
  state at the last demo token by ``alpha`` units of it (fractional and integer ``alpha``) and
  decoding greedily shows whether the response length moves by ``alpha`` (symbol-like: by the
  nearest whole number, either neighbour for a half ``alpha``) and how spread it is.
- **Precision by number**: the spread (sd) and exactness of the response length per count, at
  ``alpha = 0`` (the net's own behaviour, counts up to the OOD range) and over the magnitudes.
"""

from __future__ import annotations

import numpy as np
import torch

from numsym_pl.analysis.ood_interventions import by_group
from numsym_pl.das.alignment import Alignment
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.pairs.counterfactual import make_pairs
from numsym_pl.das.interventions.patched import pair_correct
from numsym_pl.das.pairs.sets import source_states
from numsym_pl.lit_module import greedy_decode
from numsym_pl.models.interface import SequenceModel
from numsym_pl.programs import TokenKinds, get_program
from numsym_pl.seeding import derive, rng
from numsym_pl.tasks import VOCAB, NumericEquivalence

ALPHAS = tuple(np.round(np.arange(-3.0, 3.01, 0.5), 2))


@torch.no_grad()
def count_direction(net: SequenceModel, task: NumericEquivalence, site: str, swap: SubspaceSwap, block: int = 0,
                    n: int = 1000, seed: int = 0, program: str = "up_down", variable: str = "count") -> torch.Tensor:
    """[d]: the state change that raises the aligned count by one: the least-squares coefficient
    of the program's ``variable`` when the block's coordinates are regressed on all the program's
    variables, over the positions DAS trains on (the task's intervenable positions), mapped back
    to the state's basis."""
    trials = task.sample("train", n, rng(seed, "count_direction"))
    tokens = torch.as_tensor(trials.tokens)
    state, _ = get_program(program).trace(trials.tokens, TokenKinds.of(task), trials.quantities)
    where = torch.as_tensor(trials.intervenable)
    h = net.states(tokens, site)[where].float()  # [P, d]
    W = swap.weight.detach().float()
    cols = W[:, block * swap.subspace: (block + 1) * swap.subspace]  # [d, k]
    z = h @ cols  # [P, k] aligned coordinates
    # regressed on all of the program's variables (phase too), so that a phase offset is not read as count
    names = [variable, *(v for v in get_program(program).variables if v != variable)]
    values = [torch.as_tensor(state[v], dtype=torch.float32)[where] for v in names]
    X = torch.stack([torch.ones(len(values[0])), *values], 1)  # [P, 1 + variables]
    slope = torch.linalg.lstsq(X, z).solution[1]  # [k] per unit of count
    return cols @ slope  # back to the state's basis


@torch.no_grad()
def greedy_response_length(net: SequenceModel, tokens: torch.Tensor, trigger: torch.Tensor, site: str,
                           patch_fn, max_new: int, response_token: int = VOCAB.RESP,
                           at: torch.Tensor | None = None) -> torch.Tensor:
    """[B] response tokens written after ``T`` (greedy, the state at position ``at``, default
    ``T``, patched by ``patch_fn``) before the first other token; ``max_new`` if the net never stops."""
    prefix = torch.where(torch.arange(tokens.shape[1])[None] <= trigger[:, None], tokens, VOCAB.PAD)
    at = trigger if at is None else at
    written = greedy_decode(net, prefix, trigger, max_new,
                            forward=lambda buf: net.forward_patched(buf, site, at, patch_fn))
    return (written == response_token).long().cumprod(1).sum(1)


def is_exact(error: torch.Tensor) -> torch.Tensor:
    """A response length is exact when it is within 0.5 of count + alpha (``error`` = length -
    count - alpha): the only rule gradience uses."""
    return error.abs() <= 0.5 + 1e-6


def intervention_magnitude(net: SequenceModel, task: NumericEquivalence, site: str, direction: torch.Tensor,
                           alphas=ALPHAS, per_count: int = 8, seed: int = 0) -> dict:
    """Response length after moving the state at the last demo token (a position DAS trains on;
    the net reads T next) by ``alpha`` count units, for training counts and (at ``alpha = 0``) OOD
    counts: {"alphas", "shift_mean", "shift_sd", "exact", "by_count": {count: {"sd", "exact"}} over
    every alpha, "own": {count: exact at 0}}. One rule makes a length exact, everywhere: it is
    within 0.5 of count + alpha (round(alpha) for a whole alpha, either neighbour for a half one)."""
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
                                        task.response_token, at=trigger - 1)
        shift = (length - count).float()
        err = shift - float(alpha)
        shift_mean.append(float(shift.mean()))
        shift_sd.append(float(shift.std()))
        exact.append(float(is_exact(err).float().mean()))
        errors.append(err)
    errors = torch.stack(errors)  # [n_alpha, N]
    by_count = {int(c): {"sd": float(errors[:, count == c].std()),
                         "exact": float(is_exact(errors[:, count == c]).float().mean())}
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
    pairs = make_pairs(task, alignment.program_object(), alignment.variables, n, seed=derive(seed, "gradience"))
    correct = pair_correct(net, swap, alignment.site, pairs, source_states(net, pairs, alignment.site))
    direction = count_direction(net, task, alignment.site, swap, block=0, seed=seed, program=alignment.program,
                                variable=alignment.variables[0])
    return {"per_source_value": by_group(correct, pairs.source_value),
            "per_target_count": by_group(correct, pairs.target_quantity),
            "direction_norm": float(direction.norm()),
            "magnitude": intervention_magnitude(net, task, alignment.site, direction, seed=seed)}
