"""Natural states of a pair set: what the frozen net and the program hold, unpatched, at the
positions an interchange intervention reads and writes.

- ``target_states``: the site's state of each pair's counterfactual run at ``i_t``. The
  counterfactual sequence is the target trial up to ``i_t``, so this is the target's own state
  there: the state the swap overwrites, and a sample of the states the net naturally has at the
  positions DAS patches (``i_t`` is drawn uniformly over the target's intervenable positions).
- ``program_states``: the program's state components at one position per trial.
- ``intervened_states``: the program state a pair writes at ``i_t``: the target's state there with
  the intervened variables taken from the source at ``i_s`` (through ``make_pairs``' ``value_map``
  where the pairs were made with one), as ``make_pairs`` builds it.

A program's state reads tokens only (trial quantities enter its outputs, ``reads_quantities``),
so the programs are traced here with zero quantities.
"""

from __future__ import annotations

import numpy as np
import torch

from numsym_pl.das.pairs.counterfactual import PairBatch
from numsym_pl.das.pairs.permuted import apply_map
from numsym_pl.das.settings import eval_batch
from numsym_pl.programs import Program, TokenKinds


@torch.no_grad()
def target_states(net, pairs: PairBatch, site: str, batch_size: int | None = None) -> torch.Tensor:
    """The site's state of every pair's unpatched counterfactual run at its ``i_t``: [N, d] fp32."""
    batch_size = batch_size or eval_batch(pairs.cf.device)
    out = []
    for i in range(0, len(pairs), batch_size):
        p = pairs[i: i + batch_size]
        upto = int(p.target_pos.max()) + 1  # a causal net's state at i_t reads nothing after it
        s = net.states(p.cf[:, :upto], site)  # [B, upto, d]
        out.append(s[torch.arange(len(p), device=s.device), p.target_pos].float())
    return torch.cat(out)


def program_states(program: Program, tokens, positions, kinds: TokenKinds) -> dict[str, np.ndarray]:
    """Every state component of ``program`` after reading ``tokens[b, positions[b]]``: [N] each."""
    tokens = np.asarray(tokens.cpu() if isinstance(tokens, torch.Tensor) else tokens)
    positions = np.asarray(positions.cpu() if isinstance(positions, torch.Tensor) else positions)
    quantities = {q: np.zeros(len(tokens), np.int64) for q in program.reads_quantities}
    state, _ = program.trace(tokens, kinds, quantities)
    rows = np.arange(len(tokens))
    return {k: np.asarray(v)[rows, positions] for k, v in state.items()}


def intervened_states(program: Program, variables, pairs: PairBatch, kinds: TokenKinds,
                      value_map: dict | None = None) -> dict[str, np.ndarray]:
    """The program state each pair writes at ``i_t``: the target's components there, with each
    intervened variable (``pairs.blocks``) replaced by the source's value at ``i_s``, or its image
    under ``value_map`` (the pairs' permuted values, ``pairs/permuted.py``): [N] each."""
    source = program_states(program, pairs.source, pairs.source_pos, kinds)
    state = program_states(program, pairs.cf, pairs.target_pos, kinds)
    blocks = pairs.blocks.cpu().numpy()
    for j, var in enumerate(variables):
        given = apply_map(source[var], value_map[var]) if value_map and var in value_map else source[var]
        state[var] = np.where(blocks[:, j], given, state[var])
    return state


def state_keys(program: Program, state: dict[str, np.ndarray]) -> np.ndarray:
    """The program's variables of each state as one row: [N, n_variables] int64 (the key states are
    grouped by)."""
    return np.stack([np.asarray(state[v], np.int64) for v in program.variables], 1)
