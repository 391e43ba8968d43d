"""Data generation speed: trials/s and counterfactual pairs/s, and their share of a training step
and of a DAS step (GRU d=128, batch 128), measured in one process.

    python bench/datagen.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.pairs.counterfactual import make_pairs
from numsym_pl.das.interventions.patched import patched_logits
from numsym_pl.das.pairs.sets import clean_cache, source_states
from numsym_pl.models import GRULM
from numsym_pl.programs import get_program
from numsym_pl.tasks import NumericEquivalence, VOCAB


def median_time(fn, repeats: int) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    task, B = NumericEquivalence("multi", p_void=0.2), 128
    rng = np.random.default_rng(0)
    t_trials = median_time(lambda: task.sample("train", B, rng), args.repeats)
    program = get_program("up_down")
    # training pairs as DAS makes them (no no-op floor: only test pairs are scored for it)
    t_pairs = median_time(lambda: make_pairs(task, program, ["count"], B, seed=1, floor=False), args.repeats)
    t_pairs_10k = median_time(lambda: make_pairs(task, program, ["count"], 10_000, seed=1, floor=False), 3)

    torch.manual_seed(0)
    net = GRULM(VOCAB.size, 128)
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    tr = task.sample("train", B, rng)
    tokens = torch.as_tensor(tr.tokens)

    target = tokens[:, 1:]
    mask = target != VOCAB.PAD

    def train_step():  # as training runs it: logits on the real targets only
        loss = F.cross_entropy(net(tokens[:, :-1], out_mask=mask), target[mask])
        opt.zero_grad()
        loss.backward()
        opt.step()

    t_train = median_time(train_step, args.repeats)
    frozen = GRULM(VOCAB.size, 128).requires_grad_(False)
    pairs = make_pairs(task, program, ["count"], B, seed=2)
    src, cache = source_states(frozen, pairs, "state"), clean_cache(frozen, pairs, "state")
    swap = SubspaceSwap(128, 16)
    dopt = torch.optim.Adam(swap.parameters(), lr=1e-3)

    def das_step():  # as DAS runs it: from the clean prefix cache
        logits = patched_logits(frozen, swap, "state", pairs, src, cache)
        loss = F.cross_entropy(logits[pairs.loss_mask], pairs.cf[:, 1:][pairs.loss_mask])
        dopt.zero_grad()
        loss.backward()
        dopt.step()

    t_das = median_time(das_step, args.repeats)
    print(f"threads {torch.get_num_threads()}, batch {B}, Multi-Object with p_void 0.2")
    print(f"{'what':<34}{'median s':>10}{'per second':>14}")
    print(f"{'sample 128 trials':<34}{t_trials:>10.5f}{B / t_trials:>12.0f}/s")
    print(f"{'make 128 pairs (Up-Down count)':<34}{t_pairs:>10.5f}{B / t_pairs:>12.0f}/s")
    print(f"{'make 10,000 pairs (once per DAS)':<34}{t_pairs_10k:>10.5f}{1e4 / t_pairs_10k:>12.0f}/s")
    print(f"{'GRU training step':<34}{t_train:>10.5f}")
    print(f"{'GRU DAS step':<34}{t_das:>10.5f}")
    print(f"share of a training step (trials): {t_trials / (t_trials + t_train):.1%}; "
          f"share of a DAS step if pairs were made per step: {t_pairs / (t_pairs + t_das):.1%}; "
          f"as DAS runs (10,000 pairs made once, 2,000 steps): {t_pairs_10k / (t_pairs_10k + 2000 * t_das):.2%}")


if __name__ == "__main__":
    main()
