"""Aggregates over a study's cells: mean ± sd over seeds with a t-interval, trained cells, correlations."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from numsym_pl.das.iia import wilson_interval
from numsym_pl.das.record import seed_summary

ALIGNS, FAILS = 0.9, 0.5  # per-cell levels of the competing-programs section
#: trial accuracy at which a net counts as trained: the training's stop criterion (``TrainedAt``'s
#: threshold); claims are judged on trained nets only
TRAINED = 0.999


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table, one row per list."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def verdict(interval: tuple[float, float]) -> str:
    """The level a 95 % interval of an IIA shows (the competing-programs section, per cell):
    ``high`` (all of it >= ALIGNS), ``low`` (all of it < FAILS), ``partial`` (all of it between), or
    ``uncertain`` (it straddles a threshold). Declared claims are judged by
    ``numsym_pl.analysis.verdicts`` instead, against each alignment's calibrating levels."""
    lo, hi = interval
    if lo >= ALIGNS:
        return "high"
    if hi < FAILS:
        return "low"
    return "partial" if lo >= FAILS and hi < ALIGNS else "uncertain"


def discriminates(cells: list[dict], label: str) -> bool | None:
    """False when the no-op floor (``iia_none``, mean over seeds) reaches into the interval of the IIA
    on all pairs (None: no floor measured)."""
    floor, interval = mean_sd(iia_of(r, label, "iia_none") for r in cells), interval_of(cells, label)
    return None if floor[2] == 0 or interval is None else floor[0] < interval[0]


def trained_cells(cells: list[dict]) -> list[dict]:
    """The cells whose net learned the task (trial accuracy >= TRAINED)."""
    return [r for r in cells if (r["fit"].get("val/acc_trial") or 0) >= TRAINED]


def interval_of(cells: list[dict], label: str, field: str = "iia") -> tuple[float, float] | None:
    """The 95 % interval of an alignment's ``field`` over a group of cells: one seed, the Wilson
    interval over its test pairs; several, Student's t over the seeds' values (``seed_summary``)."""
    values = [v for r in cells if (v := iia_of(r, label, field)) is not None]
    if len(values) > 1:
        interval = seed_summary(values)["interval"]
        return None if interval is None else (max(0.0, interval[0]), min(1.0, interval[1]))
    for r in cells:
        a = alignment_of(r, label)
        if a is not None and a.get(field) is not None:
            n = a.get("n_effective") if field == "iia_effective" else a.get("n")
            return tuple((a.get("intervals") or {}).get(field) or wilson_interval(a[field], n) or ()) or None
    return None


def fmt_interval(stat: tuple[float, float, int], interval: tuple[float, float] | None, digits: int = 3) -> str:
    """``mean [lo, hi]`` (one seed) or ``mean ± sd [lo, hi]`` (several)."""
    text = fmt(stat, digits)
    return text if interval is None or stat[2] == 0 else f"{text} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def mean_sd(values) -> tuple[float, float, int]:
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not v:
        return float("nan"), float("nan"), 0
    return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v)


def fmt(stat: tuple[float, float, int], digits: int = 3) -> str:
    m, s, n = stat
    if n == 0:
        return "–"
    return f"{m:.{digits}f}" if n == 1 else f"{m:.{digits}f} ± {s:.{digits}f}"


def ok_cells(results: list[dict]) -> list[dict]:
    return [r for r in results if "error" not in r]


def grouped(results: list[dict], by=("arch", "task")) -> dict[tuple, list[dict]]:
    out = defaultdict(list)
    for r in ok_cells(results):
        out[tuple(r[k] for k in by)].append(r)
    return dict(out)


def alignment_of(result: dict, label: str) -> dict | None:
    """The cell's alignment record whose key is ``label`` (a key names one program, variables,
    site and intervention: two sites are never merged)."""
    return next((a for a in result.get("alignments", []) if a["key"] == label), None)


def lead_field(cells: list[dict], label: str) -> str:
    """The figure a verdict reads: IIA on effective pairs where measured, else IIA on all pairs."""
    return "iia_effective" if any(iia_of(r, label, "iia_effective") is not None for r in cells) else "iia"


def iia_of(result: dict, label: str, field: str = "iia") -> float | None:
    a = alignment_of(result, label)
    return None if a is None else a.get(field)


def labels_in(results: list[dict]) -> list[str]:
    """Every alignment key of the finished cells, in order of appearance."""
    seen = []
    for r in ok_cells(results):
        for a in r.get("alignments", []):
            if a["key"] not in seen:
                seen.append(a["key"])
    return seen


def correlation(x, y, n_boot: int = 5000, seed: int = 0) -> dict:
    """Pearson r of paired values with a 95 % bootstrap CI (pairs resampled) and a Fisher-z CI."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    n = len(x)
    if n < 3 or x.std() == 0 or y.std() == 0:
        return {"n": n, "r": float("nan"), "ci_boot": [float("nan")] * 2, "ci_fisher": [float("nan")] * 2}
    r = float(np.corrcoef(x, y)[0, 1])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, (n_boot, n))
    xb, yb = x[idx], y[idx]
    xb, yb = xb - xb.mean(1, keepdims=True), yb - yb.mean(1, keepdims=True)
    den = np.sqrt((xb ** 2).sum(1) * (yb ** 2).sum(1))
    rb = np.where(den > 0, (xb * yb).sum(1) / np.where(den > 0, den, 1), np.nan)
    lo, hi = np.nanpercentile(rb, [2.5, 97.5])
    if n > 3:
        z, se = np.arctanh(np.clip(r, -0.999999, 0.999999)), 1 / math.sqrt(n - 3)
        fisher = [float(np.tanh(z - 1.96 * se)), float(np.tanh(z + 1.96 * se))]
    else:
        fisher = [float("nan")] * 2
    return {"n": n, "r": r, "ci_boot": [float(lo), float(hi)], "ci_fisher": fisher}


def dynamics_points(result: dict, key: str, field: str = "iia") -> list[tuple[int, float, float]]:
    """(epoch, val/acc_trial, IIA) at each DAS check of ``key`` during training whose epoch also
    has a validation (checks every 10 epochs, validation every 5: epochs 9, 19, ...); ``field``
    another figure of the check instead of its IIA (``iia_random``, ``iia_full_swap``: the baselines)."""
    acc = {a["epoch"]: a.get("val/acc_trial") for a in result.get("dynamics", {}).get("accuracy", [])}
    return sorted((d["epoch"], acc[d["epoch"]], d[field]) for d in result.get("dynamics", {}).get("das", [])
                  if d["key"] == key and acc.get(d["epoch"]) is not None and d.get(field) is not None)


def run_correlation(runs: list[list[tuple[float, float]]], n_boot: int = 5000, seed: int = 0) -> dict:
    """Pearson r of (accuracy, IIA) over training, pooled over runs (seeds), with a 95 % interval
    that respects that checks of one run are not independent: runs are resampled whole (a cluster
    bootstrap). With one run only the checks can be resampled, and ``ci_by`` says so. Also each
    run's own r."""
    runs = [np.asarray(r, float) for r in runs if len(r) >= 3]
    per_run = [correlation(r[:, 0], r[:, 1], n_boot=1)["r"] for r in runs]
    if not runs:
        return {"n_runs": 0, "n_checks": 0, "r": float("nan"), "ci": [float("nan")] * 2, "ci_by": "none", "per_run": []}
    pooled = np.concatenate(runs)
    r = correlation(pooled[:, 0], pooled[:, 1], n_boot=1)["r"]
    if len(runs) == 1:
        ci, by = correlation(pooled[:, 0], pooled[:, 1], n_boot=n_boot, seed=seed)["ci_boot"], "checks (one run)"
    else:
        rng = np.random.default_rng(seed)
        boot = [correlation(*np.concatenate([runs[i] for i in rng.integers(0, len(runs), len(runs))]).T, n_boot=1)["r"]
                for _ in range(n_boot)]
        ci, by = [float(v) for v in np.nanpercentile(boot, [2.5, 97.5])], "runs"
    return {"n_runs": len(runs), "n_checks": len(pooled), "r": r, "ci": ci, "ci_by": by, "per_run": per_run}


def fmt_over_seeds(values, digits: int = 3) -> str:
    """``mean ± sd [lo, hi] (n)`` over seeds; ``–`` when none."""
    v = [x for x in values if x is not None and not math.isnan(x)]
    if not v:
        return "–"
    s = seed_summary(v)
    return f"{fmt_interval(mean_sd(v), s['interval'], digits)} (n {len(v)})"


def seeds_of(results: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """{(arch, task): its trained cells}; a group none of whose nets trained keeps all its cells and
    is named ``<arch> (untrained)``, so that a quick study still shows its figures for what they are."""
    out = {}
    for (arch, task), cells in grouped(results).items():
        trained = trained_cells(cells)
        out[(arch if trained else f"{arch} (untrained)", task)] = trained or cells
    return out


def analysed(results: list[dict], name: str, field: str | None = None) -> dict[tuple, list[dict]]:
    """{(arch, task, alignment key): [the analysis' result on each trained seed]}; with ``field``,
    only results that hold it (results written by an older form of the analysis do not)."""
    out = {}
    for (arch, task), cells in seeds_of(results).items():
        for r in cells:
            for key, res in (r.get("analyses", {}).get(name) or {}).items():
                if "skipped" not in res and (field is None or field in res):
                    out.setdefault((arch, task, key), []).append(res)
    return out
