"""Wall time of the learning-dynamics study with the DAS callback off, on, and on with warm start.

    python bench/callback_overhead.py [--config configs/gru.yaml] [--callbacks configs/callbacks/dynamics.yaml]
        [--max_epochs 100]

The cell of `configs/studies/learning_dynamics.yaml --quick`: the config with the callbacks of the
overlay. Each variant is one `numsym_pl fit` subprocess of the same config and seed; prints wall seconds,
the ratio to the run without DAS, DAS's share of the wall time, and the IIA curve each gives.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def variant_config(base: dict, variant: str, out: Path) -> dict:
    cfg = yaml.safe_load(yaml.safe_dump(base))
    cbs = cfg["trainer"]["callbacks"]
    das = [c for c in cbs if c["class_path"].endswith("DASCallback")]
    if variant == "off":
        cfg["trainer"]["callbacks"] = [c for c in cbs if not c["class_path"].endswith("DASCallback")]
    else:
        das[0]["init_args"]["warm_start"] = variant == "warm"
    cfg["trainer"]["logger"]["init_args"].update(save_dir=str(out), name=variant, version=0)
    cfg["trainer"]["enable_progress_bar"] = False
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=str(ROOT / "configs" / "gru.yaml"))
    ap.add_argument("--callbacks", default=str(ROOT / "configs" / "callbacks" / "dynamics.yaml"))
    ap.add_argument("--max_epochs", type=int, default=100)
    args = ap.parse_args()
    # the config as the CLI resolves it (base files included, overlays merged)
    printed = subprocess.run([sys.executable, "-m", "numsym_pl", "fit", "--config", args.config,
                              "--config", args.callbacks, "--trainer.max_epochs", str(args.max_epochs),
                              "--print_config"],
                             check=True, capture_output=True, text=True, cwd=ROOT).stdout
    base = yaml.safe_load(printed)
    out = Path(tempfile.mkdtemp(prefix="callback_overhead_"))
    results = {}
    for variant in ("off", "on", "warm"):
        cfg_path = out / f"{variant}.yaml"
        cfg_path.write_text(yaml.safe_dump(variant_config(base, variant, out)))
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "numsym_pl", "fit", "--config", str(cfg_path)], check=True,
                       cwd=out, env=dict(os.environ, WANDB_MODE="offline"), capture_output=True)
        wall = time.perf_counter() - t0
        rows = list(csv.DictReader(open(out / variant / "version_0" / "metrics.csv")))
        iia_key = next((k for k in rows[0] if k.startswith("das/") and k.endswith("/iia")), None)
        sec_key = iia_key and iia_key.replace("/iia", "/seconds")
        curve = [(int(float(r["epoch"])), float(r[iia_key])) for r in rows if iia_key and r.get(iia_key)]
        das_s = sum(float(r[sec_key]) for r in rows if sec_key and r.get(sec_key))
        results[variant] = (wall, das_s, curve)
    off = results["off"][0]
    print(f"{'variant':<8}{'wall s':>9}{'ratio':>8}{'DAS s':>8}{'DAS share':>11}  IIA by epoch")
    for variant, (wall, das_s, curve) in results.items():
        c = " ".join(f"{e}:{v:.2f}" for e, v in curve)
        print(f"{variant:<8}{wall:>9.1f}{wall / off:>8.2f}{das_s:>8.1f}{das_s / wall:>11.1%}  {c}")
    print(f"ratio on/off: {results['on'][0] / off:.2f}x, warm/off: {results['warm'][0] / off:.2f}x")


if __name__ == "__main__":
    main()
