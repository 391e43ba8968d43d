"""Aggregates over a study's cells: mean ± sd over seeds, the paper's expectations, correlations."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

#: what the paper reports (SPEC §5), as the IIA level expected of an alignment: "high" or "low";
#: combinations it makes no claim about are absent.
RECURRENT, TRANSFORMER = ("gru", "lstm"), ("rope", "nope")
ALIGNS, FAILS = 0.9, 0.5  # mean IIA at or above ALIGNS: aligns; below FAILS: does not align
TRAINED = 0.95  # the paper's claims are about trained nets: cells below this trial accuracy are not compared
MARGIN = 0.1  # an IIA within this of an untrained baseline (identity, random) does not discriminate


def paper_expectation(arch: str, task: str, alignment: str) -> str | None:
    """``high`` / ``low`` / None (no claim) for an architecture, task and alignment label."""
    program = alignment.split("/")[0]
    kind = "recurrent" if arch.startswith(RECURRENT) else "transformer" if arch.startswith(TRANSFORMER) else None
    if kind is None:
        return None
    if program.startswith("ctx_distr."):
        return None  # Ctx-Distr by a single-position DAS swap: a weak test the paper did not run
    if task == "same":
        return "low"  # no program aligns on Same-Object (Ctx-Distr's context interventions included)
    if program.startswith("attention_hiding.ctx_distr") or program.startswith("context_substitution.ctx_distr"):
        return "high" if kind == "transformer" else None  # transformers recompute the count from context
    if not program.startswith(("up_down.", "up_up.")):
        return None
    if kind == "transformer":
        return "low"  # transformers align with neither Up-Down nor Up-Up
    return "high" if program.startswith("up_down.count") else "low" if program.startswith("up_up.") else None


def verdict(mean: float) -> str:
    return "high" if mean >= ALIGNS else "low" if mean < FAILS else "partial"


def agreement(expected: str | None, mean: float, acc: float = 1.0) -> str:
    if expected is None:
        return "no claim"
    if not acc >= TRAINED:
        return "not trained"
    got = verdict(mean)
    return "agrees" if got == expected else "partly" if got == "partial" else "disagrees"


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


def alignment_label(key: str) -> str:
    """The alignment without its site (sites differ between architectures): ``up_down.count``."""
    return key.split("/")[0]


def ok_cells(results: list[dict]) -> list[dict]:
    return [r for r in results if "error" not in r]


def grouped(results: list[dict], by=("arch", "task")) -> dict[tuple, list[dict]]:
    out = defaultdict(list)
    for r in ok_cells(results):
        out[tuple(r[k] for k in by)].append(r)
    return dict(out)


def iia_of(result: dict, label: str, field: str = "iia") -> float | None:
    for a in result.get("alignments", []):
        if alignment_label(a["key"]) == label:
            return a.get(field)
    return None


def labels_in(results: list[dict]) -> list[str]:
    seen = []
    for r in ok_cells(results):
        for a in r.get("alignments", []):
            if alignment_label(a["key"]) not in seen:
                seen.append(alignment_label(a["key"]))
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
