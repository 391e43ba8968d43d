"""A batched sweep against the same alignments fitted one by one, in one process.

    python bench/das_sweep.py [--ckpt runs/gru/version_0/checkpoints/last.ckpt] [--sites state]
        [--sizes 1,2,4,8,16,32,64] [--alone all|reference] [--max_steps 2000] [--n_train 10000] [--out DIR]

Fits every (site, size) alignment alone with ``run_alignment`` (``--alone reference``: only the
reference one, the first site at size 16), then the same cells as one ``run_sweep``, and prints per
cell the IIA alone and in the sweep, and the wall times: the sweep against one alignment (the
goals: <= 2x for 7 sizes at one site, <= 5x for 7 sizes x 3 sites) and against the
alignments one by one. Timings on two threads swing; the note gives the machine and the command.
``--out`` also writes the sweep's files (sweep.json, sweep.csv, the heatmap sweep.png).
``--step_profile`` instead prints, per site, the median seconds of one training step with one
rotation and with the sizes' rotations batched (batch 128), without fitting anything.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from numsym_pl.das.interventions import Interchange
from numsym_pl.checkpoints import load_checkpoint
from numsym_pl.das import Alignment, SearchSettings, run_alignment
from numsym_pl.das.sweep import run_sweep, sizes_at


def step_profile(net, task, sites, sizes, settings, repeats: int = 4) -> None:
    """Median seconds of one DAS training step (forward, backward, Adam) per site, one rotation
    (size 16) against the sizes' rotations batched in one forward, and one rotation through the
    generic hook path (what the site's fast path replaces), alternated in this process."""
    import statistics

    import torch.nn.functional as F

    from numsym_pl.das import SubspaceSwap
    from numsym_pl.das.interventions.patched import patched_logits_many
    from numsym_pl.das.pairs.sets import PairSets

    frozen = net.eval().requires_grad_(False)
    print(f"{'site':<10} {'width':>5} {'1 rotation':>11} {'batched':>9} {'ratio':>6} "
          f"{'hook path':>10} {'hook/fast':>9}")
    for site in sites:
        device = next(frozen.parameters()).device
        sets = PairSets(frozen, task, Alignment("up_down", "count", site, Interchange(16)), settings, device)
        train, src, cache = sets.pairs["train"], sets.src["train"], sets.cache["train"]
        width = frozen.site_width(site)
        medians = []
        for hooked, swaps in ((False, [SubspaceSwap(width, 16).to(device)]),
                              (False, [SubspaceSwap(width, k).to(device) for k in sizes_at(width, sizes)]),
                              (True, [SubspaceSwap(width, 16).to(device)])):
            if hooked:  # the instance attribute shadows the fast path
                frozen.forward_patched = frozen.forward_patched_by_hooks
            opt = torch.optim.Adam([p for s in swaps for p in s.parameters()], lr=1e-3)
            times = []
            for i in range(repeats):
                idx = torch.arange(128 * i, 128 * (i + 1), device=device)
                batch = train[idx]
                t0 = time.perf_counter()
                logits = patched_logits_many(frozen, swaps, site, batch, src[idx],
                                             None if cache is None else cache[idx])
                scored = logits.view(len(swaps), len(batch), *logits.shape[1:])[:, batch.loss_mask]
                target = batch.cf[:, 1:][batch.loss_mask].repeat(len(swaps))
                F.cross_entropy(scored.flatten(0, 1), target).backward()
                opt.step()
                opt.zero_grad()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            medians.append(statistics.median(times[1:]))  # the first is a warm-up
            frozen.__dict__.pop("forward_patched", None)
        print(f"{site:<10} {width:>5} {medians[0]:>11.3f} {medians[1]:>9.3f} {medians[1] / medians[0]:>5.1f}x "
              f"{medians[2]:>10.3f} {medians[2] / medians[0]:>8.1f}x", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ckpt", default="runs/gru/version_0/checkpoints/last.ckpt")
    ap.add_argument("--sites", default=None, help="comma-separated (default: the net's default site)")
    ap.add_argument("--sizes", default="1,2,4,8,16,32,64")
    ap.add_argument("--featurizer", default="rotation")
    ap.add_argument("--alone", choices=["all", "reference"], default="all")
    ap.add_argument("--max_steps", type=int, default=2000)
    ap.add_argument("--n_train", type=int, default=10000)
    ap.add_argument("--out", default=None, help="also write sweep.json/csv/png here")
    ap.add_argument("--step_profile", action="store_true", help="only time one batched training step per site")
    ap.add_argument("--device", default="auto", help="auto (cuda when there is one), cpu, cuda")
    args = ap.parse_args()
    lm, task = load_checkpoint(args.ckpt, args.device)
    net = lm.net.eval()
    sites = args.sites.split(",") if args.sites else [net.default_site]
    sizes = [int(k) for k in args.sizes.split(",")]
    settings = SearchSettings(max_steps=args.max_steps, n_train=args.n_train, progress=False)
    cells = [(site, k) for site in sites for k in sizes_at(net.site_width(site), sizes)]
    if args.step_profile:
        return step_profile(net, task, sites, sizes, settings)
    reference = (sites[0], 16 if 16 in sizes else sizes[len(sizes) // 2])
    alone = {}
    for site, k in cells if args.alone == "all" else [reference]:
        t0 = time.perf_counter()
        result, _ = run_alignment(net, task, Alignment("up_down", "count", site,
                                                       Interchange(k, featurizer=args.featurizer)), settings)
        alone[site, k] = (result.iia, result.steps, time.perf_counter() - t0)
        print(f"alone {site:<8} {k:>3}: IIA {result.iia:.3f}, {result.steps} steps, {alone[site, k][2]:.1f} s",
              flush=True)
    t0 = time.perf_counter()
    records = run_sweep(net, task, "up_down", "count", sites, sizes, [args.featurizer], settings)
    sweep_s = time.perf_counter() - t0
    if args.out:
        from numsym_pl.analysis.sweep_outputs import write_outputs

        Path(args.out).mkdir(parents=True, exist_ok=True)
        write_outputs(records, {"ckpt_path": args.ckpt, "program": "up_down", "variables": ["count"], "sites": sites,
                                "sizes": sizes, "featurizers": [args.featurizer], "settings": asdict(settings),
                                "seconds": sweep_s, "command": "python bench/das_sweep.py " + " ".join(sys.argv[1:])},
                      Path(args.out))
    print(f"\n{args.ckpt}: {type(net).__name__}, {len(cells)} cells ({len(sites)} site(s) x {len(sizes)} sizes, "
          f"capped at each width), featurizer {args.featurizer}, {settings.max_steps} steps max, "
          f"{settings.n_train} pairs; {next(net.parameters()).device}, threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')}")
    print(f"{'site':<8} {'size':>4} {'IIA alone':>10} {'IIA sweep':>10} {'|diff|':>7} "
          f"{'steps alone':>12} {'steps sweep':>12}")
    worst = 0.0
    for r in records:
        a = alone.get((r["site"], r["subspace"]))
        diff = abs(a[0] - r["iia"]) if a else None
        worst = max(worst, diff or 0.0)
        print(f"{r['site']:<8} {r['subspace']:>4} {a[0] if a else float('nan'):>10.3f} {r['iia']:>10.3f} "
              f"{diff if diff is not None else float('nan'):>7.3f} {a[1] if a else '':>12} {r['steps']:>12}")
    single = alone[reference][2]
    print(f"\nreference alignment alone ({reference[0]}, {reference[1]}): {single:.1f} s; sweep: {sweep_s:.1f} s "
          f"= {sweep_s / single:.2f}x one alignment")
    if args.alone == "all":
        total = sum(t for _, _, t in alone.values())
        print(f"one by one: {total:.1f} s = {total / single:.2f}x one alignment; "
              f"sweep / one by one = {sweep_s / total:.2f}; largest IIA difference {worst:.3f}")


if __name__ == "__main__":
    main()
