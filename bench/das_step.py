"""One DAS training step (forward_patched + backward, batch 128, GRU d=128): the fused
implementation, as DAS runs it (the clean prefix state of every pair cached once per pair set)
and without the cache, against the per-step reference loop, alternated in one process.

    python bench/das_step.py [--repeats 15] [--arch gru|lstm]

Prints a table of median seconds per step and the speed-up ratio last.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.pairs.counterfactual import make_pairs
from numsym_pl.das.pairs.sets import clean_cache, source_states
from numsym_pl.models import GRULM, LSTMLM
from numsym_pl.programs import get_program
from numsym_pl.tasks import NumericEquivalence, VOCAB


METHODS = {"forward_patched + cache": "forward_patched", "+ cache, cayley map": "forward_patched",
           "forward_patched": "forward_patched", "forward_patched_by_hooks": "forward_patched_by_hooks"}


def step(net, swap, opt, batch, src, cache, variant):
    kwargs = {} if variant == "forward_patched_by_hooks" else {"out_mask": batch.loss_mask}
    if "cache" in variant:
        kwargs["cache"] = cache
    logits = getattr(net, METHODS[variant])(batch.cf[:, :-1], "state", batch.target_pos, lambda h: swap(h, src),
                                            **kwargs)
    loss = F.cross_entropy(logits[batch.loss_mask], batch.cf[:, 1:][batch.loss_mask])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--arch", choices=["gru", "lstm"], default="gru")
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    torch.manual_seed(0)
    net = (GRULM(VOCAB.size, 128) if args.arch == "gru" else LSTMLM(VOCAB.size, 64)).eval().requires_grad_(False)
    pairs = make_pairs(NumericEquivalence("multi"), get_program("up_down"), ["count"], args.batch * args.repeats,
                       seed=0)
    src, cache = source_states(net, pairs, "state"), clean_cache(net, pairs, "state")
    swaps = {k: SubspaceSwap(net.site_width("state"), 16, orthogonal_map="cayley" if "cayley" in k else "matrix_exp")
             for k in METHODS}
    opts = {k: torch.optim.Adam(s.parameters(), lr=1e-3) for k, s in swaps.items()}
    times = {k: [] for k in METHODS}
    for r in range(args.repeats):
        sl = slice(r * args.batch, (r + 1) * args.batch)
        for method in (list(times) if r % 2 == 0 else list(times)[::-1]):  # alternate the order
            t0 = time.perf_counter()
            step(net, swaps[method], opts[method], pairs[sl], src[sl], cache[sl], method)
            times[method].append(time.perf_counter() - t0)
    med = {k: statistics.median(v[1:]) for k, v in times.items()}  # drop the warm-up step
    print(f"DAS step, {args.arch}, batch {args.batch}, cf length {pairs.cf.shape[1]}, "
          f"threads {torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')}")
    print(f"{'method':<28}{'median s/step':>14}")
    for k, v in med.items():
        print(f"{k:<28}{v:>14.4f}")
    ref = med["forward_patched_by_hooks"]
    print(f"speed-up (reference / fused): {ref / med['forward_patched']:.1f}x without cache, "
          f"{ref / med['forward_patched + cache']:.1f}x with the cache (as DAS runs), "
          f"{ref / med['+ cache, cayley map']:.1f}x with the cache and orthogonal_map: cayley")


if __name__ == "__main__":
    main()
