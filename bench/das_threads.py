"""A DAS fit beside other work on a 2-core machine: the fit on one CPU thread (what ``numsym_pl das``
and a study cell do, ``das.posthoc.fit_threads``) against the same fit on two threads, each alone
and beside a busy process (a loop of two-thread matmuls), in fresh subprocesses, alternated.

    python bench/das_threads.py --ckpt_path CKPT [--rounds 2] [--max_steps 300]

Prints the median wall time of each variant and the ratios; the fits' IIA (equal for equal
threads) shows that the variants measured the same work.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FIT = """
import json, sys, time, torch
from dataclasses import replace
from numsym_pl.checkpoints import load_checkpoint
from numsym_pl.das import Alignment, SearchSettings, run_alignment
from numsym_pl.threads import cpu_threads
lm, task = load_checkpoint(sys.argv[1], torch.device("cpu"))
s = SearchSettings(n_train=4000, n_val=500, n_test=500, max_steps=int(sys.argv[3]), progress=False, baselines=False)
with cpu_threads(int(sys.argv[2])):
    t0 = time.perf_counter()
    result, _ = run_alignment(lm.net, task, Alignment("up_down", "count"), s)
print(json.dumps({"seconds": time.perf_counter() - t0, "iia": result.iia}))
"""

HOG = """
import torch
torch.set_num_threads(2)
a = torch.randn(512, 512)
while True:
    a = torch.tanh(a @ a.T / 512)
"""


def run_fit(ckpt: str, threads: int, steps: int, busy: bool) -> dict:
    hog = subprocess.Popen([sys.executable, "-c", HOG]) if busy else None
    try:
        if hog is not None:
            time.sleep(1.0)  # the hog is spinning before the fit starts
        out = subprocess.run([sys.executable, "-c", FIT, ckpt, str(threads), str(steps)], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt_path", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max_steps", type=int, default=300)
    args = parser.parse_args()
    variants = [(1, False), (2, False), (1, True), (2, True)]
    seconds, iia = {v: [] for v in variants}, {}
    for r in range(args.rounds):
        for v in (variants if r % 2 == 0 else variants[::-1]):
            out = run_fit(args.ckpt_path, *v[:1], args.max_steps, v[1])
            seconds[v].append(out["seconds"])
            iia[v] = out["iia"]
            print(f"round {r}: {v[0]} thread(s), {'beside a busy process' if v[1] else 'alone'}: "
                  f"{out['seconds']:.1f} s, IIA {out['iia']:.3f}", flush=True)
    med = {v: statistics.median(s) for v, s in seconds.items()}
    print(f"\nmedians over {args.rounds} rounds ({args.max_steps} steps):")
    for v in variants:
        print(f"  {v[0]} thread(s) {'beside a busy process' if v[1] else 'alone':<22} {med[v]:6.1f} s  "
              f"({med[v] / med[(1, False)]:.2f}x the one-thread fit alone)  IIA {iia[v]:.3f}")


if __name__ == "__main__":
    main()
