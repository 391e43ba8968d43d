"""The per-net table and the correlations in README.md, from the study's committed results.

    python docs/findings/full/context_by_block/summarise.py [docs/findings/full/context_by_block/study]

One row per net: IIA on effective pairs [95 % interval] of attention hiding (all blocks, block 1
alone, block 2 alone) and context substitution (resid.1, resid.0), and which block's hiding alone
moves the net (its lower bound >= 0.5). Then, over the trained nets (trial accuracy >= 0.95),
Pearson r between hiding in one block alone and the resid.1 substitution, with a bootstrap
interval over nets.
"""

import json
import sys
from pathlib import Path

import numpy as np

from numsym_pl.analysis.summary import TRAINED

KEYS = {"attn": "hiding, all blocks", "attn0": "block 1 only", "attn1": "block 2 only",
        "resid.1": "substitution at `resid.1`", "resid.0": "at `resid.0` (ceiling)"}
ORDER = {"rope": 0, "nope": 1, "multi": 0, "single": 1, "same": 2}


def figures(cell: dict) -> dict:
    return {a["key"].split("/")[-1]: a for a in cell["alignments"]}


def row(cell: dict) -> str:
    a, fit = figures(cell), cell["fit"]
    shown = [f"{a[k]['iia_effective']:.3f} [{a[k]['intervals']['iia_effective'][0]:.2f}, "
             f"{a[k]['intervals']['iia_effective'][1]:.2f}]" for k in KEYS]
    moved = [name for name, k in (("block 1", "attn0"), ("block 2", "attn1"))
             if a[k]["intervals"]["iia_effective"][0] >= 0.5]
    where = "not trained" if fit["val/acc_trial"] < TRAINED else " and ".join(moved) or "neither alone"
    stopped = int(fit["trained/epoch"]) if fit.get("trained/epoch") else f"{int(fit['epoch'])} (ceiling)"
    return f"| {cell['cell']} | {stopped} | {fit['val/acc_trial']:.3f} | " + " | ".join(shown) + f" | {where} |"


def bootstrap_r(x: np.ndarray, y: np.ndarray, n: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    rng, rs = np.random.default_rng(seed), []
    for _ in range(n):
        i = rng.integers(0, len(x), len(x))
        if x[i].std() > 0 and y[i].std() > 0:
            rs.append(np.corrcoef(x[i], y[i])[0, 1])
    return float(np.corrcoef(x, y)[0, 1]), float(np.percentile(rs, 2.5)), float(np.percentile(rs, 97.5))


def main(run_dir: str = "docs/findings/full/context_by_block/study") -> None:
    cells = json.loads((Path(run_dir) / "results.json").read_text())
    cells = sorted((c for c in cells if "error" not in c),
                   key=lambda c: (ORDER[c["arch"]], ORDER[c["task"]], c["seed"]))
    print("| cell | stopped at | trial acc | " + " | ".join(KEYS.values()) + " | hiding in one block alone moves it |")
    print("|---|---|---|" + "---|" * len(KEYS) + "---|")
    for c in cells:
        print(row(c))
    trained = [figures(c) for c in cells if c["fit"]["val/acc_trial"] >= TRAINED]
    y = np.array([a["resid.1"]["iia_effective"] for a in trained])
    for k, name in (("attn1", "block 2 alone"), ("attn0", "block 1 alone")):
        r, lo, hi = bootstrap_r(np.array([a[k]["iia_effective"] for a in trained]), y)
        print(f"\n{len(trained)} trained nets: r(hiding in {name}, resid.1 substitution) = "
              f"{r:.3f} [{lo:.3f}, {hi:.3f}]")


if __name__ == "__main__":
    main(*sys.argv[1:])
