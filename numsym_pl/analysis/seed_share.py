"""How many seeds align: for each architecture and task with at least ``MIN_SEEDS`` trained seeds,
each DAS alignment's seeds whose IIA (all test pairs, mean over DAS seeds) reaches ``HIGH``, as k of
n with a Wilson 95 % interval on the share, beside the spread of the seeds and their fitted nulls;
a strip plot shows every seed. Where a net aligns on some seeds and not on others, the mean over
seeds describes no net: the share is the figure to report."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from numsym_pl.analysis.figures import image_link, save, subplots
from numsym_pl.analysis.summary import alignment_of, labels_in, markdown_table, seeds_of
from numsym_pl.analysis.verdicts import HIGH, over_das_seeds
from numsym_pl.das.iia import wilson_interval
from numsym_pl.das.record import flat_record

#: the fewest trained seeds of a group for which a share is reported
MIN_SEEDS = 8


def seed_shares(results: list[dict]) -> list[dict]:
    """One entry per (arch, task, DAS alignment) with enough seeds: the seeds' IIA and nulls, k, n."""
    out = []
    for (arch, task), cells in seeds_of(results).items():
        if len(cells) < MIN_SEEDS:
            continue
        for key in labels_in(cells):
            records = [a for r in cells if (a := alignment_of(r, key)) and a.get("intervention") == "das"
                       and a.get("iia") is not None]
            if not records:
                continue
            values = [over_das_seeds(a, "iia") for a in records]
            nulls = [v for a in records if (v := flat_record(a).get("iia_null")) is not None]
            out.append({"arch": arch, "task": task, "key": key, "values": values, "nulls": nulls,
                        "k": sum(v >= HIGH for v in values), "n": len(values)})
    return out


def strip_plot(shares: list[dict], path: Path) -> Path:
    fig, ax = subplots(figsize=(7, 0.45 * len(shares) + 1.2))
    for i, s in enumerate(shares):
        ax.scatter(s["values"], np.full(len(s["values"]), i), s=14, color="C0", label="seeds" if i == 0 else None)
        ax.scatter(s["nulls"], np.full(len(s["nulls"]), i), s=10, marker="x", color="grey",
                   label="fitted nulls" if i == 0 else None)
    ax.axvline(HIGH, color="grey", ls=":", lw=0.8)
    ax.set_yticks(range(len(shares)), [f"{s['arch']} {s['task']} {s['key']}" for s in shares], fontsize=7)
    ax.set(xlabel="IIA, all test pairs (mean over DAS seeds)", xlim=(-0.02, 1.02), title="Every seed")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="x")
    return save(fig, path)


def seed_share_section(results: list[dict], out_dir: Path) -> str:
    """The report's section; empty when no group has ``MIN_SEEDS`` trained seeds."""
    shares = seed_shares(results)
    if not shares:
        return ""
    rows = []
    for s in shares:
        lo, hi = wilson_interval(s["k"] / s["n"], s["n"])
        v = np.asarray(s["values"])
        share = f"{s['k'] / s['n']:.2f} [{lo:.2f}, {hi:.2f}]"
        spread = [f"{x:.3f}" for x in (v.min(), np.median(v), v.max())]
        rows.append([s["arch"], s["task"], s["key"], f"{s['k']} of {s['n']}", share, *spread,
                     f"{max(s['nulls']):.3f}" if s["nulls"] else "–"])
    path = strip_plot(shares, out_dir / "figures" / "seed_share.png")
    return "\n\n".join([
        f"## Seeds that align\n\nFor each architecture and task with at least {MIN_SEEDS} trained seeds: the seeds "
        f"whose IIA (all test pairs, mean over DAS seeds) reaches {HIGH}, their share with a Wilson 95 % interval, "
        "the lowest, median and highest seed, and the highest fitted null. Where some seeds align and others do not, "
        "the mean over seeds describes no net; the share is the figure.",
        markdown_table(["arch", "task", "alignment", f"seeds >= {HIGH}", "share [95 % Wilson]", "lowest", "median",
                        "highest", "highest null"], rows),
        image_link(path, out_dir, "every seed")])
