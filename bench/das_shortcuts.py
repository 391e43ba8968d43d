"""Two shortcuts of a DAS step that keep its numbers, each measured against the
step without it, alternated in one process:

- clean keys: when the patch is a transformer's last-block input, that block takes keys and values
  from the unpatched stream without autograd (but at the patched position), projects queries at
  the scored positions only, and runs its projection and FFN without the padding that makes the
  scored positions a rectangle;
- rotation columns: a ``matrix_exp`` rotation gives the swap its first k columns by a Taylor series
  on those columns (``featurizers.expm_columns``) instead of the d x d exponential and its backward.

    python bench/das_shortcuts.py [--ckpt runs/transformer_rope/version_0/checkpoints/last.ckpt]
        [--sites resid.1,attn.1,mlp.1] [--n_train 10000] [--max_steps 2000] [--threads 1] [--no_fits]
    python bench/das_shortcuts.py --ckpt runs/gru/version_0/checkpoints/last.ckpt --sites state

Prints the median seconds of one DAS training step (batch 128) per site and variant, then whole
alignments at the study's DAS budget on the same checkpoint, "before" (neither shortcut) against
"after" (both): IIA, steps, seconds. The step timings use fresh rotations (A = 0: one series step);
during a fit the series takes more steps as ``||A||_F`` grows, which the whole alignments include.
"""


from __future__ import annotations

import argparse
import statistics
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from numsym_pl.das.interventions import Interchange
from numsym_pl.checkpoints import load_checkpoint
from numsym_pl.das import Alignment, SearchSettings, SubspaceSwap, run_alignment
from numsym_pl.das.featurizers import Rotation
from numsym_pl.das.interventions.patched import patched_logits_many
from numsym_pl.das.pairs.sets import PairSets
from numsym_pl.models.transformer import Block


VARIANTS = ("before", "clean keys", "rotation columns", "after")


@contextmanager
def variant(name: str):
    """``before``: neither shortcut (what a step did until they landed); ``clean keys`` or
    ``rotation columns``: that one alone; ``after``: both, as shipped."""
    shipped_at, shipped_columns = Block.forward_at, Rotation.columns
    if name in ("before", "rotation columns"):
        def forward_at(self, x, qpos, valid=None, clean=None, at=None):
            y = shipped_at(self, x, qpos)
            return y if valid is None else y[valid]
        Block.forward_at = forward_at
    if name in ("before", "clean keys"):
        Rotation.columns = lambda self, r: self.weight[:, :r]
    try:
        yield
    finally:
        Block.forward_at, Rotation.columns = shipped_at, shipped_columns


def step_seconds(net, sets, site, repeats: int) -> dict[str, float]:
    train, src, cache = sets.pairs["train"], sets.src["train"], sets.cache["train"]
    times = {name: [] for name in VARIANTS}
    for i in range(repeats + 1):
        for name in times:  # alternated, so both see the same machine
            swap = SubspaceSwap(net.site_width(site), 16)
            opt = torch.optim.Adam(swap.parameters(), lr=1e-3)
            idx = torch.arange(128 * i, 128 * (i + 1)) % len(train)
            batch = train[idx]
            with variant(name):
                t0 = time.perf_counter()
                logits = patched_logits_many(net, [swap], site, batch, src[idx], None if cache is None else cache[idx])
                F.cross_entropy(logits[batch.loss_mask], batch.cf[:, 1:][batch.loss_mask]).backward()
                opt.step()
                if i:  # the first is a warm-up
                    times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default="runs/transformer_rope/version_0/checkpoints/last.ckpt")
    ap.add_argument("--sites", default="resid.1,attn.1,mlp.1")
    ap.add_argument("--n_train", type=int, default=10000)
    ap.add_argument("--max_steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="a study cell gets cores / max_parallel (1 here)")
    ap.add_argument("--no_fits", action="store_true", help="time the steps only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lm, task = load_checkpoint(args.ckpt)
    net = lm.net.eval().requires_grad_(False)
    settings = SearchSettings(n_train=args.n_train, n_val=1000, n_test=1000, max_steps=args.max_steps, progress=False)
    print(f"{args.ckpt}: {type(net).__name__}; threads {args.threads} (clean keys touch transformers only)")
    print(f"{'site':<8} {'width':>5} " + " ".join(f"{name:>16}" for name in VARIANTS) + f" {'before/after':>12}")
    for site in args.sites.split(","):
        sets = PairSets(net, task, Alignment("up_down", "count", site, Interchange(16)), settings, torch.device("cpu"))
        s = step_seconds(net, sets, site, args.repeats)
        print(f"{site:<8} {net.site_width(site):>5} " + " ".join(f"{s[name]:>16.4f}" for name in VARIANTS)
              + f" {s['before'] / s['after']:>11.2f}x", flush=True)
    if args.no_fits:
        return
    print(f"\nwhole alignments (up_down count, size 16, {args.n_train} pairs, up to {args.max_steps} steps)")
    print(f"{'site':<8} {'IIA before':>10} {'IIA after':>10} {'|diff|':>7} "
          f"{'steps':>11} {'s before':>9} {'s after':>8} {'ratio':>6}")
    for site in args.sites.split(","):
        got = {}
        for name in ("before", "after"):
            with variant(name):
                t0 = time.perf_counter()
                result, _ = run_alignment(net, task, Alignment("up_down", "count", site, Interchange(16)), settings)
                got[name] = (result.iia, result.steps, time.perf_counter() - t0)
        (a, sa, ta), (b, sb, tb) = got["before"], got["after"]
        print(f"{site:<8} {a:>10.3f} {b:>10.3f} {abs(a - b):>7.3f} "
              f"{f'{sa}/{sb}':>11} {ta:>9.1f} {tb:>8.1f} {ta / tb:>5.2f}x", flush=True)


if __name__ == "__main__":
    main()
