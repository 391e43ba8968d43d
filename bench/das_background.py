"""The DAS callback fitting in a worker process beside training (``background: true``, the configs'
default since 2026-12-06) against fitting in the training process between epochs (``false``, before),
a whole ``numsym_pl fit`` each, fresh subprocesses, alternated round by round; medians over rounds.

    python bench/das_background.py [--config configs/gru.yaml] [--rounds 2] [--callback_from FILE] [-- FIT ARGS]

The config's DAS callback (the last DASCallback of its ``trainer.callbacks``, or of the base
trainer's; ``--callback_from`` names another file, e.g. ``configs/callbacks/dynamics.yaml``, whose
other settings then go on the command line too) is run both ways through an overlay that copies it
with ``background`` set. Prints per round the wall time,
``trained/seconds`` (the fit up to its stop: in-process fits included, background ones not) and
the epoch it stopped at; then whether every logged number other than a time is equal both ways
(a background fit runs on one thread, an in-process one on the trainer's: they can differ in the
last digits) and the ratio last.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import yaml
from omp_policy import TIMES, alternated, fit, last

BASE_CALLBACKS = Path("configs/base/trainer.yaml")


def das_callback(config: str) -> dict:
    """The DAS callback a config's fit would get (its own list, or the base trainer's)."""
    for path in (Path(config), BASE_CALLBACKS):
        spec = yaml.safe_load(path.read_text())
        trainer = spec if path == BASE_CALLBACKS else spec.get("trainer")
        callbacks = trainer.get("callbacks") if isinstance(trainer, dict) else None  # a str: the base file
        found = [c for c in callbacks or [] if isinstance(c, dict) and c.get("class_path", "").endswith("DASCallback")]
        if found:
            return found[-1]
    raise SystemExit(f"{config}: no DASCallback in its trainer.callbacks nor in {BASE_CALLBACKS}")


def rows_without_times(columns: dict[str, list[str]]) -> list[tuple]:
    """The metrics.csv rows, each as its filled cells other than times, sorted: the background
    logs a fit's row when it is back, so the rows' order in the file differs, not their content."""
    keys = [k for k in columns if not k.endswith(TIMES)]
    return sorted(tuple((k, columns[k][i]) for k in keys if columns[k][i] != "") for i in range(len(columns[keys[0]])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/gru.yaml")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--callback_from", default=None,
                    help="the config file whose DAS callback to run (default: --config)")
    ap.add_argument("extra", nargs="*", help="more fit arguments (after --)")
    args = ap.parse_args()
    callback, variants = das_callback(args.callback_from or args.config), ("in-process", "background")
    if args.callback_from:
        args.extra = ["--config", args.callback_from, *args.extra]
    walls, metrics = {v: [] for v in variants}, {}
    with tempfile.TemporaryDirectory() as tmp:
        overlays = {}
        for v in variants:
            cb = {**callback, "init_args": {**callback.get("init_args", {}), "background": v == "background"}}
            overlays[v] = Path(tmp) / f"{v}.yaml"
            overlays[v].write_text(yaml.safe_dump({"trainer": {"callbacks": [cb]}}))
        print(f"numsym_pl fit --config {args.config} {' '.join(args.extra)}, its DAS callback both ways; "
              f"trainer threads {os.cpu_count()}")
        print(f"{'round':<7}{'variant':<12}{'wall s':>9}{'trained/seconds':>17}{'stopped at':>12}")
        for r, v in alternated(variants, args.rounds):
            wall, m = fit(args.config, "default", [*args.extra, "--config", str(overlays[v])])
            walls[v].append(wall)
            metrics.setdefault(v, m)
            trained, epoch = last(m.get("trained/seconds", [])), last(m.get("trained/epoch", []))
            print(f"{r:<7}{v:<12}{wall:>9.1f}{'-' if trained is None else f'{trained:.1f}':>17}"
                  f"{'-' if epoch is None else int(epoch):>12}")
    a, b = (rows_without_times(metrics[v]) for v in variants)
    print("every logged row equal both ways, times aside (in whatever order they were written):", a == b)
    for name, rows, other in (("in-process only", a, b), ("background only", b, a)):
        for row in sorted(set(rows) - set(other)):
            print(f"  {name}: {dict(row)}")
    med = {v: statistics.median(w) for v, w in walls.items()}
    print(f"wall in-process / background: {med['in-process'] / med['background']:.2f}x "
          f"({med['in-process']:.1f} s vs {med['background']:.1f} s)")


if __name__ == "__main__":
    main()
