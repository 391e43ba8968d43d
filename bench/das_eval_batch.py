"""DAS's no-grad passes (source states, clean caches, every IIA check and the scoring with its
baselines) in chunks of about ``search.EVAL_ROWS_CPU`` rows on the CPU, against 1,000 pairs per
chunk (before 2026-12-02), as whole alignments on one checkpoint, alternated in one process.

    python bench/das_eval_batch.py --ckpt runs/gru/version_0/checkpoints/last.ckpt [--site state]
        [--rows 128,256] [--n_train 2000 --n_val 500 --n_test 500 --max_steps 300] [--rounds 2]

The default budget is the DAS callback's (``callbacks.das.DASCallback``); a study's is
``--n_train 10000 --n_val 1000 --n_test 1000 --max_steps 2000``. Prints, per variant, the median
seconds of the alignment and its IIA, full-swap and random-rotation baselines (equal in every
variant: chunking changes no pair's score), then the ratio before / each variant.
"""

from __future__ import annotations

import argparse
import statistics
import time
from unittest import mock

import torch

from numsym_pl.checkpoints import load_checkpoint
from numsym_pl.das import Alignment, SearchSettings, run_alignment
from numsym_pl.das import settings as search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--site", default=None, help="default: the net's default site")
    parser.add_argument("--program", default="up_down")
    parser.add_argument("--variables", default="count")
    parser.add_argument("--subspace", type=int, default=16)
    parser.add_argument("--rows", default="128,256", help="EVAL_ROWS_CPU values to compare with 1,000 pairs per chunk")
    parser.add_argument("--n_train", type=int, default=2000)
    parser.add_argument("--n_val", type=int, default=500)
    parser.add_argument("--n_test", type=int, default=500)
    parser.add_argument("--max_steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    lm, task = load_checkpoint(args.ckpt)
    net = lm.net.eval()
    alignment = Alignment(args.program, args.variables.split("+"), args.site, args.subspace).for_net(net)
    settings = SearchSettings(n_train=args.n_train, n_val=args.n_val, n_test=args.n_test,
                              max_steps=args.max_steps, progress=False)
    variants = {"1000 pairs (before)": lambda device, swaps=1: 1000}
    variants.update({f"{rows} rows": (lambda r: lambda device, swaps=1: max(1, r // swaps))(int(rows))
                     for rows in args.rows.split(",")})
    print(f"{args.ckpt}: {alignment.key}, {args.n_train}/{args.n_val}/{args.n_test} pairs, up to "
          f"{args.max_steps} steps; {torch.get_num_threads()} thread(s), {args.rounds} alternated rounds")
    seconds, outcome = {v: [] for v in variants}, {}
    for _ in range(args.rounds):
        for name, chunk in variants.items():
            with mock.patch.object(search, "eval_batch", chunk):
                t0 = time.perf_counter()
                result, _ = run_alignment(net, task, alignment, settings)
                seconds[name].append(time.perf_counter() - t0)
            outcome[name] = (f"IIA {result.iia:.4f}, full swap {result.iia_full_swap:.4f}, "
                             f"random {result.iia_random:.4f}, {result.steps} steps")
    base = statistics.median(seconds["1000 pairs (before)"])
    for name in variants:
        print(f"{name}: {statistics.median(seconds[name]):.1f} s ({outcome[name]})")
    print("ratio before / variant: " + ", ".join(f"{n} {base / statistics.median(seconds[n]):.2f}x" for n in variants))


if __name__ == "__main__":
    main()
