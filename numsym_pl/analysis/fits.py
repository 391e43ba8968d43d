"""How a study's DAS fits went: validation IIA over the steps of every fit (each training seed and
DAS seed), why each stopped, where its kept featurizer was, and the spread of IIA within and
between training seeds (a report section and its figure)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from numsym_pl.analysis.figures import subplots
from numsym_pl.analysis.summary import ok_cells

MAX_PANELS = 12


def fits_of(results: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    """(architecture, task, alignment key) -> every fit of it: one per training seed and DAS seed,
    ``{cell, seed, das_seed, iia, stopped, best_step, steps, history}``."""
    out = defaultdict(list)
    for r in ok_cells(results):
        for a in r.get("alignments", []):
            if not a.get("history"):
                continue
            reps = a.get("replicates") or [{"seed": (a.get("settings") or {}).get("seed"), "iia": a["iia"],
                                            "stopped": a.get("stopped"), "best_step": a.get("best_step"),
                                            "steps": a.get("steps"), "history": a["history"]}]
            for rep in reps:
                out[(r["arch"], r["task"], a["key"])].append({"cell": r["cell"], "seed": r["seed"],
                                                              "das_seed": rep["seed"],
                                                              **{k: rep.get(k) for k in ("iia", "stopped", "best_step",
                                                                                         "steps", "history")}})
    return dict(out)


def fit_curves(fits: dict, path: Path) -> Path | None:
    """Validation IIA over steps, one panel per (architecture, task, alignment), a line per fit
    (colour: training seed; a dot at the kept featurizer's step)."""
    groups = list(fits.items())[:MAX_PANELS]
    if not groups:
        return None
    cols = min(3, len(groups))
    rows = (len(groups) + cols - 1) // cols
    fig, axes = subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    axes = axes.ravel()
    for ax, ((arch, task, key), runs) in zip(axes, groups):
        seeds = sorted({f["seed"] for f in runs})
        for f in runs:
            colour = f"C{seeds.index(f['seed']) % 10}"
            steps, iia = [h["step"] for h in f["history"]], [h["iia_val"] for h in f["history"]]
            ax.plot(steps, iia, color=colour, lw=1, alpha=0.8)
            kept = [h["iia_val"] for h in f["history"] if h["step"] == f["best_step"]]
            if kept:
                ax.plot([f["best_step"]], kept, "o", color=colour, ms=3)
        ax.set(title=f"{arch} {task}\n{key}", xlabel="DAS step", ylabel="validation IIA", ylim=(-0.02, 1.02))
        ax.title.set_fontsize(8)
    for ax in axes[len(groups):]:
        ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def fits_section(results: list[dict], out_dir: Path) -> str:
    """The report's section on the DAS fits ("" when no fit kept its curve)."""
    fits = fits_of(results)
    if not fits:
        return ""
    rows = []
    for (arch, task, key), runs in fits.items():
        stopped = defaultdict(int)
        for f in runs:
            stopped[f["stopped"] or "?"] += 1
        within = [np.std([f["iia"] for f in runs if f["seed"] == s], ddof=1) for s in {f["seed"] for f in runs}
                  if sum(f["seed"] == s for f in runs) > 1]
        means = [np.mean([f["iia"] for f in runs if f["seed"] == s]) for s in {f["seed"] for f in runs}]
        rows.append(f"| {arch} | {task} | {key} | {len({f['seed'] for f in runs})} x "
                    f"{max(sum(f['seed'] == s for f in runs) for s in {f['seed'] for f in runs})} | "
                    + ", ".join(f"{k} {v}" for k, v in sorted(stopped.items()))
                    + f" | {np.median([f['best_step'] for f in runs if f['best_step'] is not None]):.0f} | "
                    + (f"{np.mean(within):.3f}" if within else "-") + " | "
                    + (f"{np.std(means, ddof=1):.3f}" if len(means) > 1 else "-") + " |")
    figure = fit_curves(fits, out_dir / "figures" / "das_fits.png")
    return "\n".join([
        "## DAS fits",
        "Every fit of every alignment: why it stopped (`target`: training and validation IIA reached the target; "
        "`plateau`: the validation loss stopped falling; `budget`: the step budget, where the learning rate has "
        "decayed to 0), the median step of the featurizer it kept (the check with the best validation IIA), and "
        "the spread of IIA over DAS seeds within a training seed (mean sd) beside the spread of the per-seed means "
        "between training seeds (sd).",
        "| architecture | task | alignment | training x DAS seeds | stopped | median kept step | sd within | "
        "sd between |",
        "|---|---|---|---|---|---|---|---|", *rows,
        *([f"![Validation IIA over the steps of each fit]({figure.relative_to(out_dir)})"] if figure else [])])
