"""The figures of a study report (matplotlib, PNG), each from the collected cell results."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from numsym_pl.analysis.figures import save, subplots
from numsym_pl.analysis.summary import grouped, iia_of, labels_in, mean_sd, ok_cells

STYLES = ("-", "--", ":")


def main_bars(results: list[dict], path: Path) -> Path:
    """IIA (mean over seeds, sd as error bar) per architecture x task, one bar per alignment."""
    groups, labels = grouped(results), labels_in(results)
    fig, ax = subplots(figsize=(max(7, 0.9 * len(groups) * max(1, len(labels)) / 2), 4))
    width = 0.8 / max(1, len(labels))
    for j, label in enumerate(labels):
        stats = [mean_sd(iia_of(r, label) for r in cells) for cells in groups.values()]
        ax.bar(np.arange(len(groups)) + j * width, [s[0] for s in stats], width, yerr=[s[1] for s in stats],
               label=label, capsize=2)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, ["\n".join(k) for k in groups], fontsize=8)
    ax.set_ylabel("IIA (held-out pairs)")
    ax.set_ylim(0, 1.05)
    ax.axhline(0.9, color="grey", lw=0.8, ls=":")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Alignment by architecture and task")
    return save(fig, path)


def dynamics(results: list[dict], path: Path) -> Path | None:
    """Task accuracy (black) and IIA (coloured) against epoch, one panel per architecture x task."""
    groups = {k: v for k, v in grouped(results).items() if any(r.get("dynamics", {}).get("das") for r in v)}
    if not groups:
        return None
    fig, axes = subplots(1, len(groups), figsize=(4.5 * len(groups), 3.6), squeeze=False)
    for ax, (key, cells) in zip(axes[0], groups.items()):
        for r in cells:
            acc = r["dynamics"]["accuracy"]
            ax.plot([a["epoch"] for a in acc], [a.get("val/acc_trial") for a in acc], color="black", lw=1, alpha=0.7)
            by_key = defaultdict(list)
            for row in r["dynamics"]["das"]:
                by_key[row["key"]].append(row)
            for i, (k, rows) in enumerate(sorted(by_key.items())):
                rows.sort(key=lambda x: x["epoch"])
                ax.plot([x["epoch"] for x in rows], [x["iia"] for x in rows], "-o", ms=3, color=f"C{i}",
                        label=k if r is cells[0] else None)
        ax.set_title(" / ".join(key), fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("val/acc_trial (black) / IIA")
    return save(fig, path)


def size_sweep(results: list[dict], label: str, path: Path) -> Path | None:
    """Trial accuracy (ID, OOD) and IIA against model width d, mean ± sd over seeds, per architecture."""
    cells = [r for r in ok_cells(results) if r.get("size") is not None]
    if len({r["size"] for r in cells}) < 2:
        return None
    fig, axes = subplots(1, 3, figsize=(13, 3.6))
    for i, arch in enumerate(sorted({r["arch"] for r in cells})):
        sizes = sorted({r["size"] for r in cells if r["arch"] == arch})
        series = {"val/acc_trial": lambda r: r["fit"].get("val/acc_trial"),
                  "val/acc_trial_ood": lambda r: r["fit"].get("val/acc_trial_ood"),
                  f"IIA {label}": lambda r: iia_of(r, label)}
        for ax, (name, get) in zip(axes, series.items()):
            stats = [mean_sd(get(r) for r in cells if r["arch"] == arch and r["size"] == s) for s in sizes]
            ax.errorbar(sizes, [s[0] for s in stats], yerr=[s[1] for s in stats], marker="o", capsize=2,
                        color=f"C{i}", label=arch)
            ax.set_title(name, fontsize=9)
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("d (state width)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save(fig, path)


def _mean_by_key(dicts: list[dict]) -> tuple[list[int], list[float]]:
    """The mean over seeds of {value: figure} dicts (JSON keys: text), by value."""
    by = defaultdict(list)
    for d in dicts:
        for k, v in d.items():
            if v is not None:
                by[int(k)].append(v)
    xs = sorted(by)
    return xs, [float(np.mean(by[x])) for x in xs]


def gradience(groups: dict[tuple, list[dict]], path: Path) -> Path:
    """Per task (a row of panels): IIA by carried count; response-length shift against intervention
    magnitude; the net's own precision by count; each a mean over a group's trained seeds."""
    tasks = sorted({k[1] for k in groups})
    fig, axes = subplots(len(tasks), 3, figsize=(14, 3.6 * len(tasks)), squeeze=False)
    archs = sorted({k[0] for k in groups})
    for row, task in zip(axes, tasks):
        keys = [k for k in groups if k[1] == task]
        for key in keys:
            gs, colour = groups[key], f"C{archs.index(key[0]) % 10}"
            style = STYLES[[k for k in keys if k[0] == key[0]].index(key) % 3]
            label = f"{key[0]} {key[2]}"
            row[0].plot(*_mean_by_key([g["per_source_value"] for g in gs]), marker="o", ls=style, ms=3, color=colour,
                        label=label)
            a = np.array(gs[0]["magnitude"]["alphas"])
            row[1].plot(a, np.mean([g["magnitude"]["shift_mean"] for g in gs], 0), marker="o", ls=style, ms=3,
                        color=colour, label=label)
            if style == STYLES[0]:  # the net's own behaviour does not depend on the alignment
                row[2].plot(*_mean_by_key([g["magnitude"]["own"] for g in gs]), "-o", ms=3, color=colour, label=key[0])
        alphas = np.linspace(-3, 3, 121)
        row[1].plot(alphas, alphas, ":", color="grey", label="shift = alpha (graded)")
        row[1].plot(alphas, np.round(alphas), "--", color="grey", lw=0.8, label="shift = round(alpha) (symbolic)")
        row[0].set(xlabel="count carried by the source", ylabel="IIA", title=f"{task}: IIA by number",
                   ylim=(-0.02, 1.02))
        row[1].set(xlabel="alpha (count units added at the last demo token)", ylabel="response length - count",
                   title=f"{task}: intervention magnitude")
        row[2].set(xlabel="count", ylabel="exact response length", ylim=(-0.02, 1.02),
                   title=f"{task}: precision by number (no intervention)")
        for ax in row:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6)
    return save(fig, path)


def ood_by_value(groups: dict[tuple, list[dict]], path: Path) -> Path | None:
    """Normalised IIA of the Up-Down alignments led by the count, by the value the source carries (mean over
    seeds), one panel per task, the training range shaded; raw IIA dotted."""
    keys = [k for k in groups if k[2].startswith(("up_down.count/", "up_down.count+"))]
    if not keys:
        return None
    tasks = sorted({k[1] for k in keys})
    fig, axes = subplots(1, len(tasks), figsize=(5.2 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        top = 0
        for i, key in enumerate(k for k in keys if k[1] == task):
            for field, style in (("normalised", "-"), ("iia", ":")):
                xs, ys = _mean_by_key([{v: s.get(field) for v, s in r["per_value"].items()} for r in groups[key]])
                ax.plot(xs, ys, style, marker="o" if style == "-" else None, ms=3, color=f"C{i % 10}",
                        label=f"{key[0]} {key[2]}" if style == "-" else None)
            top = max([top, *[int(r.get("max_count", 0)) for r in groups[key]]])
        ax.axvspan(-0.5, top + 0.5, color="grey", alpha=0.12, label="training range")
        ax.set(xlabel="value carried by the source", ylabel="IIA (normalised: solid; raw: dotted)", title=task)
        ax.set_ylim(bottom=-0.02)  # normalised IIA may exceed 1
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    return save(fig, path)


def flips_by_count(groups: dict[tuple, list[dict]], ks: list[int], path: Path) -> Path:
    """IIA against the number of phase flips (mean ± sd over seeds); the unpatched control dotted."""
    fig, ax = subplots(figsize=(6, 3.8))
    for i, (key, rs) in enumerate(groups.items()):
        for name, style in (("iia", "-"), ("unpatched", ":")):
            values = [[r[name].get(k, r[name].get(str(k))) for r in rs] for k in ks]
            ax.errorbar(ks, [np.mean(v) for v in values], yerr=[np.std(v) for v in values], ls=style, marker="o",
                        ms=3, capsize=2, color=f"C{i % 10}",
                        label=f"{key[0]} {key[1]}" + (" unpatched" if name == "unpatched" else ""))
    ax.set(xlabel="phase flips in the sequence", ylabel="IIA", ylim=(-0.02, 1.05), xticks=ks,
           title="Repeated phase flips")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    return save(fig, path)


def correlation(points: list[tuple[str, float, float]], stats: dict, label: str, path: Path) -> Path:
    """IIA against OOD trial accuracy, one point per cell, coloured by architecture."""
    fig, ax = subplots(figsize=(5.5, 4))
    archs = sorted({p[0] for p in points})
    for i, arch in enumerate(archs):
        sel = [p for p in points if p[0] == arch]
        ax.scatter([p[1] for p in sel], [p[2] for p in sel], color=f"C{i}", label=arch, s=20)
    ci = stats["ci_boot"]
    ax.set(xlabel=f"IIA {label}", ylabel="val/acc_trial_ood",
           title=f"r = {stats['r']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}] (n = {stats['n']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save(fig, path)


def grouped_bars(rows: list[tuple[str, list[float]]], series: list[str], title: str, path: Path) -> Path:
    """One group of bars per row label, one bar per series (IIA-like values in [0, 1])."""
    fig, ax = subplots(figsize=(max(5.5, 1.1 * len(rows) * len(series) / 2), 3.6))
    width = 0.8 / len(series)
    for j, name in enumerate(series):
        ax.bar(np.arange(len(rows)) + j * width, [v[j] for _, v in rows], width, label=name)
    ax.set_xticks(np.arange(len(rows)) + 0.4 - width / 2, [label for label, _ in rows], fontsize=7)
    ax.set(ylabel="IIA", ylim=(0, 1.05), title=title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    return save(fig, path)
