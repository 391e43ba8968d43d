"""Where a full-budget study cell's time goes, one cell per architecture.

    python bench/cell_profile.py [--study configs/studies/paper_main.yaml] [--task multi] [--seed 0]
        [--archs gru,lstm,rope,nope] [--out /tmp/cell_profile] [--quick]
    python bench/cell_profile.py --records runs/studies/paper_main [--archs rope]

Runs the study's cell (architecture, task, seed) as the study would — the fit as a subprocess,
then each alignment, then the analyses — with a timer around each piece, and prints per
architecture: process start-up (a bare ``python -c "import numsym_pl.cli"``), the fit (its
subprocess wall time less start-up; the epoch it stopped at), per alignment the fitting of the
learned part (pairs, source states, the steps), its scoring and baselines, and the untrained-net
control, then the analyses and the cell's total. Each cell gets the threads a study gives it
(``cores / max_parallel``); the fits of a later run reuse the checkpoints under ``--out``
(delete it to time them again). ``--quick`` profiles the study's quick cell instead.

``--records STUDY_DIR`` runs nothing: it reads the finished cells of a study that has run
(``cells/*/result.json``) and prints, per architecture, the median over those cells of each
alignment's fit and untrained-net control as the cell recorded them, the rest of the cell (its
fit when it ran in that process, scoring, analyses), and the cell's recorded total (a cell resumed
after an interruption records the time since its resume).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from numsym_pl.checkpoints import load_checkpoint
from numsym_pl.das.controls import run_controls
from numsym_pl.das.run import run_alignment
from numsym_pl.study.analyses import run_analyses
from numsym_pl.study.cell import fit, read_metrics
from numsym_pl.study.loading import load_study


def startup_seconds() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numsym_pl.cli"], check=True)
    return time.perf_counter() - t0


def profile(cell, startup: float) -> list[tuple[str, float, str]]:
    """[(piece, seconds, note)] of one cell."""
    rows = []
    cell.dir.mkdir(parents=True, exist_ok=True)
    reused = (cell.dir / "fit_done").exists()
    t0 = time.perf_counter()
    ckpt = fit(cell)
    fit_s = time.perf_counter() - t0
    last, _ = read_metrics(cell.dir / "fit" / "metrics.csv")
    lm, task = load_checkpoint(ckpt)
    net = lm.net.eval()
    stopped = f"trained at epoch {int(last['trained/epoch'])}" if "trained/epoch" in last else \
        f"ran to epoch {int(last.get('epoch', -1))}, not trained"
    rows.append(("process start-up (per fit)", 0.0 if reused else startup, ""))
    rows.append(("fit", 0.0 if reused else max(0.0, fit_s - startup),
                 ("reused checkpoint; " if reused else "") + stopped))
    settings = replace(cell.das, progress=False)
    swaps = {}
    for alignment in [a.for_net(net) for a in cell.alignments]:
        t0 = time.perf_counter()
        result, swap = run_alignment(net, task, alignment, settings)
        total = time.perf_counter() - t0
        fitted = result.seconds if result.fit is not None else total
        steps = f"{result.steps} steps" if result.steps is not None else ""
        rows.append((f"{alignment.key}: fit", fitted, steps))
        rows.append((f"{alignment.key}: scoring + baselines", total - fitted, ""))
        if settings.controls and swap is not None:
            t0 = time.perf_counter()
            run_controls(net, task, alignment, settings, result)
            rows.append((f"{alignment.key}: untrained-net control", time.perf_counter() - t0, ""))
        swaps[alignment.key] = swap
    t0 = time.perf_counter()
    run_analyses(replace(cell, dir=cell.dir / "profile"), list(cell.alignments), net, task, swaps)
    rows.append((f"analyses {cell.analyses}", time.perf_counter() - t0, ""))
    return rows


def from_records(study_dir: Path, archs: list[str]) -> None:
    """The split of a study's finished cells, from their own records (median over cells)."""
    cells = [json.loads(p.read_text()) for p in sorted(study_dir.glob("cells/*/result.json"))]
    if not cells:
        sys.exit(f"--records: no finished cell (cells/*/result.json) under {study_dir}")
    print(f"{study_dir}: {len(cells)} finished cells, pieces as each cell recorded them (median over cells)")
    for arch in archs:
        mine = [c for c in cells if c["arch"] == arch]
        if not mine:
            continue
        rows: dict[str, list[float]] = {}
        for c in mine:
            spent = 0.0
            for a in c["alignments"]:
                control = (a.get("controls") or {}).get("untrained") or {}
                # a control shared by a row's cells (numsym_pl.study.shared_controls) costs only where it was computed
                here = control.get("computed_in", c["cell"]) == c["cell"]
                for piece, seconds in ((f"{a['key']}: fit", a.get("seconds") or 0.0),
                                       (f"{a['key']}: untrained-net control", (control.get("seconds") or 0.0) * here)):
                    rows.setdefault(piece, []).append(seconds)
                    spent += seconds
            rows.setdefault("the rest (fit if run then, scoring, analyses)", []).append(max(0.0, c["seconds"] - spent))
        total = statistics.median(c["seconds"] for c in mine)
        print(f"\n## {arch}: {len(mine)} cells, median {total:.0f} s per cell "
              f"({', '.join(sorted(c['cell'] for c in mine))})")
        for piece, values in rows.items():
            median = statistics.median(values)
            print(f"  {piece:<60} {median:8.1f} s  {100 * median / total:5.1f} %")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", default="configs/studies/paper_main.yaml")
    ap.add_argument("--task", default="multi")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--archs", default="gru,lstm,rope,nope")
    ap.add_argument("--out", default="/tmp/cell_profile")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--records", type=Path, default=None,
                    help="a study's output directory: print its cells' split, run nothing")
    args = ap.parse_args()
    if args.records is not None:
        return from_records(args.records, args.archs.split(","))
    study, *_ = load_study(["--config", args.study, "--out_dir", args.out, *(["--quick"] if args.quick else [])])
    threads = max(1, (os.cpu_count() or 1) // study.max_parallel)
    torch.set_num_threads(threads)
    cells = {c.arch: c for c in study.cells(threads) if c.task == args.task and c.seed == args.seed}
    startup = startup_seconds()
    print(f"{args.study}{' --quick' if args.quick else ''}, task {args.task}, seed {args.seed}; "
          f"{threads} thread(s) per cell, {os.cpu_count()} cores; torch {torch.__version__}")
    for arch in args.archs.split(","):
        if arch not in cells:
            sys.exit(f"--archs: no {arch!r} cell in {args.study} (architectures: {sorted(cells)})")
        t0 = time.perf_counter()
        rows = profile(cells[arch], startup)
        wall = time.perf_counter() - t0
        print(f"\n## {arch} ({cells[arch].id}): {wall:.1f} s")
        for piece, seconds, note in rows:
            print(f"  {piece:<60} {seconds:8.1f} s  {100 * seconds / wall:5.1f} %  {note}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
