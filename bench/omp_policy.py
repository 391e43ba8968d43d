"""The OpenMP wait policy of a whole fit: the runtime's default (what numsym_pl runs under since
2026-12-06) against ``OMP_WAIT_POLICY=passive`` (what numsym_pl set before), and any other policy
named, each fit a fresh ``numsym_pl fit`` subprocess, the policies alternated round by round;
medians over rounds.

    python bench/omp_policy.py [--config configs/gru.yaml] [--rounds 2] [--policies default,passive] [-- FIT ARGS]

Prints, per policy and round, the wall time of the command, ``trained/seconds`` (the fit up to its
stop, its DAS callbacks included), the seconds the DAS callbacks took, the epoch the fit stopped
at; then whether every logged number other than a time is equal across policies (it must be: the
policy changes speed, not numbers), and the ratios last: each policy's median wall time over the
default's.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMES = ("seconds",)  # a metric whose name ends so is a time, not a result


def read_metrics(run_dir: Path) -> dict[str, list[str]]:
    """Every column of the fit's metrics.csv, row by row."""
    (path,) = run_dir.rglob("metrics.csv")
    rows = list(csv.DictReader(path.open()))
    return {k: [r[k] for r in rows] for k in rows[0]}


def fit(config: str, policy: str, extra: list[str]) -> tuple[float, dict[str, list[str]]]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy.upper()
    env.setdefault("WANDB_MODE", "offline")
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "numsym_pl", "fit", "--config", config, "--trainer.enable_progress_bar", "false",
               "--trainer.logger.init_args.save_dir", out, *extra]
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0, read_metrics(Path(out))


def alternated(variants, rounds: int):
    """(round, variant) for ``rounds`` rounds, which variant runs first alternating round by round."""
    variants = list(variants)
    for r in range(rounds):
        for v in (variants if r % 2 == 0 else variants[::-1]):
            yield r, v


def das_seconds(metrics: dict[str, list[str]]) -> list[tuple[int, float]]:
    """(epoch, seconds) of each DAS fit a run logged, in epoch order."""
    cols = [k for k in metrics if k.startswith("das/") and k.endswith("/seconds")]
    rows = [(int(float(metrics["epoch"][i])), sum(float(metrics[k][i]) for k in cols if metrics[k][i]))
            for i in range(len(metrics["epoch"])) if any(metrics[k][i] for k in cols)]
    return sorted(rows)


def last(values: list[str]) -> float | None:
    filled = [float(v) for v in values if v != ""]
    return filled[-1] if filled else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/gru.yaml")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--policies", default="default,passive")
    ap.add_argument("extra", nargs="*", help="more fit arguments (after --)")
    args = ap.parse_args()
    policies = args.policies.split(",")
    walls, metrics = {p: [] for p in policies}, {}
    print(f"numsym_pl fit --config {args.config} {' '.join(args.extra)}; {os.cpu_count()} cores")
    print(f"{'round':<7}{'policy':<10}{'wall s':>9}{'trained/seconds':>17}{'DAS s':>8}{'stopped at':>12}")
    for r, p in alternated(policies, args.rounds):
        wall, m = fit(args.config, p, args.extra)
        walls[p].append(wall)
        metrics.setdefault(p, m)
        das = sum(s for _, s in das_seconds(m))
        trained = last(m.get("trained/seconds", []))
        epoch = last(m.get("trained/epoch", []))
        print(f"{r:<7}{p:<10}{wall:>9.1f}{'-' if trained is None else f'{trained:.1f}':>17}{das:>8.1f}"
              f"{'-' if epoch is None else int(epoch):>12}")
    base = metrics[policies[0]]
    same = {p: all(base[k] == m.get(k) for k in base if not k.endswith(TIMES)) for p, m in metrics.items()}
    print("every logged number but the times equal to the first policy's:", same)
    med = {p: statistics.median(w) for p, w in walls.items()}
    for p in policies[1:]:
        print(f"wall {p} / {policies[0]}: {med[p] / med[policies[0]]:.2f}x "
              f"({med[p]:.1f} s vs {med[policies[0]]:.1f} s)")


if __name__ == "__main__":
    main()
