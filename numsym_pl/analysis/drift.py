"""The report's section on the drift of patched states: for every architecture, task and
alignment, how far the states the learned swap writes lie from the states the net naturally has
at the site, beside the full-state swap and a random rotation (``numsym_pl.das.drift``; ratios,
1 = as natural as natural states), with its figure ``figures/drift.png``."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from numsym_pl.analysis.figures import subplots
from numsym_pl.analysis.summary import fmt, markdown_table, mean_sd, ok_cells

SWAPS = {"das": "learned", "full": "full swap", "random": "random rotation"}
MEASURES = {"knn": "kNN", "mahalanobis": "Mahalanobis", "emd": "EMD"}
MAX_GROUPS = 24


def drift_of(results: list[dict]) -> dict[tuple[str, str, str, float], list[dict]]:
    """(architecture, task, alignment key, CL weight) -> the ``drift`` of each cell's alignment."""
    out = defaultdict(list)
    for r in ok_cells(results):
        for a in r.get("alignments", []):
            if a.get("drift"):
                weight = (a.get("cl") or {}).get("weight", 0.0)
                out[(r["arch"], r["task"], a["key"], weight)].append(a["drift"])
    return dict(out)


def drift_figure(groups: dict, path: Path) -> Path | None:
    """kNN and EMD ratios per group (mean over cells, sd as error bars), a bar per swap, on a log
    scale with natural states at 1."""
    items = list(groups.items())[:MAX_GROUPS]
    if not items:
        return None
    fig, axes = subplots(1, 2, figsize=(max(6.0, 0.9 * len(items) + 3), 4.2), squeeze=False)
    x, width = np.arange(len(items)), 0.8 / len(SWAPS)
    labels = [f"{arch} {task}\n{key}" + (f"\nCL {w:g}" if w else "") for (arch, task, key, w), _ in items]
    for ax, measure in zip(axes[0], ("knn", "emd")):
        for j, (swap, name) in enumerate(SWAPS.items()):
            stats = [mean_sd((d.get(swap) or {}).get(measure) for d in drifts) for _, drifts in items]
            ax.bar(x + (j - 1) * width, [s[0] for s in stats], width, yerr=[s[1] for s in stats], label=name,
                   color=f"C{j}")
        ax.axhline(1.0, color="black", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
        ax.set(ylabel=f"{MEASURES[measure]} ratio to natural states", title=f"drift ({MEASURES[measure]})")
    axes[0][0].legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def drift_section(results: list[dict], out_dir: Path) -> str | None:
    """The report's drift section, or None when no alignment measured its drift."""
    groups = drift_of(results)
    if not groups:
        return None
    out_dir = Path(out_dir)
    rows = [[arch, task, f"`{key}`", f"{weight:g}", len(drifts),
             *[fmt(mean_sd((d.get(swap) or {}).get(m) for d in drifts), 2) for m in MEASURES for swap in SWAPS]]
            for (arch, task, key, weight), drifts in groups.items()]
    header = ["arch", "task", "alignment", "CL weight", "cells",
              *[f"{MEASURES[m]} {SWAPS[s]}" for m in MEASURES for s in SWAPS]]
    figure = drift_figure(groups, out_dir / "figures" / "drift.png")
    return "\n\n".join([
        "## Drift of patched states",
        "Is a state an interchange intervention writes one the net could have had? Each figure is a ratio to the "
        "net's natural states at the site (the targets' own states at the patched positions of the training pairs), "
        "mean ± sd over cells: the distance to the nearest natural states (kNN), the Mahalanobis distance under "
        "the natural covariance, and the optimal-transport distance between the clouds (EMD). 1 is as natural as "
        "natural states; the full-state swap, which writes another trial's natural state, sits near 1 by "
        "construction. A learned swap far above 1 reaches its IIA through states the net never produces, "
        "so its IIA may rest on how the net extrapolates rather than on how it computes.",
        markdown_table(header, rows),
        *([f"![Drift of patched states]({figure.relative_to(out_dir)})"] if figure else [])])
