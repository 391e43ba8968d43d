"""Figures (matplotlib, PNG) shared by callbacks, commands and reports."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure


def subplots(*grid, figsize, **kwargs):
    """(figure, axes) drawn without pyplot: no global figure state, no GUI backend to choose."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **kwargs)


def save(fig, path: str | Path, dpi: int = 110) -> Path:
    """Lay ``fig`` out and write it to ``path`` (its folder created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return path


def image_link(path: Path | None, out_dir: Path, alt: str) -> str:
    """A Markdown image of ``path`` relative to the report's folder ``out_dir`` ("" for no figure)."""
    return "" if path is None else f"![{alt}]({path.relative_to(out_dir).as_posix()})"


def learning_dynamics(accuracy: list[dict], das: list[dict], path: str | Path) -> Path:
    """Task accuracy and each alignment's IIA (solid) with its baselines (dotted) against epoch.

    ``accuracy``: rows ``{"epoch", "val/acc_trial", ...}``; ``das``: rows ``{"epoch", "key", "iia",
    "iia_identity", "iia_full_swap", ...}``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = subplots(figsize=(7, 4.2))
    for key, style in (("val/acc_trial", "-"), ("val/acc_trial_heldout", "--"), ("val/acc_trial_ood", ":")):
        rows = [r for r in accuracy if r.get(key) is not None]
        if rows:
            ax.plot([r["epoch"] for r in rows], [r[key] for r in rows], style, color="black", label=key)
    by_key = defaultdict(list)
    for r in das:
        by_key[r["key"]].append(r)
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (key, rows) in enumerate(sorted(by_key.items())):
        rows.sort(key=lambda r: r["epoch"])
        c = colors[i % len(colors)]
        ax.plot([r["epoch"] for r in rows], [r["iia"] for r in rows], "-o", color=c, ms=3, label=f"IIA {key}")
        if rows[0].get("iia_full_swap") is not None:
            ax.plot([r["epoch"] for r in rows], [r["iia_full_swap"] for r in rows], ":", color=c, alpha=0.7,
                    label=f"full-state swap {key}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy / IIA")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Learning dynamics: task accuracy and alignment")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def pca_scatter(Z, count, phase, title: str, path: str | Path) -> Path:
    """Two panels of the same 2-D projection ``Z`` [M, 2]: coloured by count, and by phase."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = subplots(1, 2, figsize=(10, 4.2))
    sc = axes[0].scatter(Z[:, 0], Z[:, 1], c=count, cmap="viridis", s=4)
    fig.colorbar(sc, ax=axes[0], label="Up-Down count")
    for ph, color, label in ((0, "tab:blue", "demo phase"), (1, "tab:red", "response phase")):
        sel = phase == ph
        axes[1].scatter(Z[sel, 0], Z[sel, 1], s=4, color=color, label=label, alpha=0.6)
    axes[1].legend(markerscale=3, fontsize=8)
    for ax in axes:
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def sweep_heatmap(records: list[dict], path: str | Path, title: str = "") -> Path:
    """IIA by site (rows) x subspace size (columns), one panel per (net, featurizer), each cell
    annotated with its IIA and, below it, the mean random-rotation baseline of that size; two
    columns after a gap give each site's full-state swap and no-intervention floor."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    panels = list(dict.fromkeys((r.get("net", "trained"), r["featurizer"]) for r in records))
    sites = list(dict.fromkeys(r["site"] for r in records))
    sizes = sorted({r["subspace"] for r in records})
    cols = [str(k) for k in sizes] + ["full", "none"]
    fig, axes = subplots(1, len(panels), figsize=(1.0 + 0.75 * len(cols) * len(panels), 0.9 + 0.5 * len(sites)),
                         squeeze=False)
    for ax, (net, featurizer) in zip(axes[0], panels):
        grid = np.full((len(sites), len(cols)), np.nan)
        note = {}
        for r in records:
            if (r.get("net", "trained"), r["featurizer"]) != (net, featurizer):
                continue
            i, j = sites.index(r["site"]), sizes.index(r["subspace"])
            grid[i, j] = r["iia"]
            if r.get("iia_random") is not None:
                note[i, j] = f"rnd {r['iia_random']:.2f}"
            if r.get("iia_full_swap") is not None:
                grid[i, -2] = r["iia_full_swap"]
            grid[i, -1] = r["iia_none"] if r.get("iia_none") is not None else np.nan
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            if not np.isnan(v):
                text = f"{v:.2f}" + (f"\n{note[i, j]}" if (i, j) in note else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color="white" if v < 0.6 else "black")
        ax.axvline(len(sizes) - 0.5, color="white", lw=3)
        ax.set_xticks(range(len(cols)), cols)
        ax.set_yticks(range(len(sites)), sites)
        ax.set_xlabel("subspace size  |  baselines")
        ax.set_title(f"{featurizer} ({net} net)", fontsize=9)
    fig.colorbar(image, ax=list(axes[0]), label="IIA (held-out pairs)", shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=9, y=1.0 + 0.25 / fig.get_figheight())  # above the panels' titles
    fig.savefig(path, dpi=130, bbox_inches="tight")
    return path
