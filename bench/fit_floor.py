"""What the DAS callback adds to a whole ``numsym_pl fit``, and what this machine's cores allow.

    python bench/fit_floor.py [--config configs/gru.yaml] [--rounds 2] [-- FIT ARGS]

Runs, alternated round by round in fresh subprocesses, the fit as configured and the same fit with
no callbacks (``--trainer.callbacks=[]``: no DAS; the callback trains exactly like no callback, so
both stop at the same epoch with the same validation numbers, which is checked). Splits what the
callback adds into the fit at the end of fit (after the last epoch: nothing is left to overlap it
with; its logged seconds) and the rest, what the fits during training cost the training beside
them. ``no DAS + the fit at the end`` is the least the fit could take if the fits during training
were free.

``to stop s`` is ``trained/seconds``: from the start of fit (after the process has started, about
5 s of imports and set-up) to the stop once trained; the fit at the end of fit comes after it.
Each run's CPU time (user + system, of the fit and every process it started) over the machine's
cores is the least wall time that work could take with every core busy from start to end.

Then the cores: a one-thread [128, 128] x [128, 384] matmul loop (the recurrent step's size) alone,
and two copies side by side in two processes. Where two side by side run as fast as one alone, the
CPUs are independent cores, and what a background fit costs the training comes from the training
using both cores itself (its CPU seconds over its wall seconds say how much); where they run
slower, the CPUs share a core's resources (e.g. SMT siblings under a hypervisor) as well.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys

from omp_policy import TIMES, alternated, das_seconds, fit, last

MATMUL = """
import time, torch
torch.set_num_threads(1)
a, b = torch.randn(128, 128), torch.randn(128, 384)
for _ in range(500): a @ b
t = time.perf_counter()
for _ in range(20000): a @ b
print((time.perf_counter() - t) / 20000 * 1e6)
"""


def matmul_us(copies: int) -> list[float]:
    """Microseconds per matmul of each of ``copies`` one-thread loops run at once."""
    procs = [subprocess.Popen([sys.executable, "-c", MATMUL], stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    return [float(p.communicate()[0]) for p in procs]


def cpu_seconds() -> float:
    """User + system seconds of every child process that has ended so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/gru.yaml")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("extra", nargs="*", help="more fit arguments (after --)")
    args = ap.parse_args()
    variants = {"configured": [], "no DAS": ["--trainer.callbacks=[]"]}
    walls, cpus, metrics = {v: [] for v in variants}, {v: [] for v in variants}, {}
    print(f"numsym_pl fit --config {args.config} {' '.join(args.extra)}")
    print(f"{'round':<7}{'variant':<12}{'wall s':>9}{'CPU s':>9}{'to stop s':>11}{'stopped at':>12}  "
          "DAS fits (epoch: s)")
    for r, v in alternated(variants, args.rounds):
        before = cpu_seconds()
        wall, m = fit(args.config, "default", [*args.extra, *variants[v]])
        walls[v].append(wall)
        cpus[v].append(cpu_seconds() - before)
        metrics.setdefault(v, m)
        epoch, to_stop = last(m.get("trained/epoch", [])), last(m.get("trained/seconds", []))
        fits = ", ".join(f"{e}: {s:.1f}" for e, s in das_seconds(m)) or "-"
        print(f"{r:<7}{v:<12}{wall:>9.1f}{cpus[v][-1]:>9.1f}{'-' if to_stop is None else f'{to_stop:.1f}':>11}"
              f"{'-' if epoch is None else int(epoch):>12}  {fits}")
    val = {v: {k: [x for x in m[k] if x] for k in m if k.startswith(("val/", "trained/")) and not k.endswith(TIMES)}
           for v, m in metrics.items()}
    print("training the same with and without the callback (every val/ and trained/ number):",
          val["configured"] == val["no DAS"])
    med = {v: statistics.median(w) for v, w in walls.items()}
    fits = das_seconds(metrics["configured"])
    at_end = fits[-1][1] if fits else 0.0
    added = med["configured"] - med["no DAS"]
    print(f"the callback adds {added:.1f} s ({med['configured']:.1f} against {med['no DAS']:.1f} s, medians): "
          f"the fit at the end {at_end:.1f} s, the fits during training {added - at_end:.1f} s of the training's time "
          f"({sum(s for _, s in fits[:-1]):.1f} s of fitting beside it)")
    print(f"least with the fits during training free: {med['no DAS'] + at_end:.1f} s")
    cores = os.cpu_count()
    for v in variants:
        cpu = statistics.median(cpus[v])
        print(f"{v}: {cpu:.1f} CPU s (median) over {cores} cores: at least {cpu / cores:.1f} s with every core busy "
              f"throughout; in its {med[v]:.1f} s of wall time the cores were {cpu / cores / med[v]:.0%} busy")
    alone, (one, two) = matmul_us(1)[0], matmul_us(2)
    print(f"one-thread matmul: {alone:.0f} us alone, {one:.0f} and {two:.0f} us two side by side "
          f"({statistics.mean([one, two]) / alone:.2f}x slower each; the two CPUs give "
          f"{2 * alone / statistics.mean([one, two]):.2f}x one)")


if __name__ == "__main__":
    main()
