"""Verdicts on declared claims (``numsym_pl.analysis.claims``): seed-level statistics, calibrated
levels and a Holm correction.

For each claim and group (architecture x task), the unit is a trained seed (a net whose trial
accuracy reached ``TRAINED``). Per seed: its IIA on all test pairs (the mean over DAS seeds where
several were fitted) with the Wilson interval over its pairs, and its calibrating levels, each on
the same pairs' footing: the no-op ``floor`` (the unpatched net), the ``rival`` program's
coincidence (the share of pairs on which the rival's labels equal the claim's, so a net that
follows the rival scores that much), and the fitted ``null`` (the same DAS against the program with
its variable's values permuted). A seed is ``high`` when its IIA >= ``HIGH``, ``low`` when it is no
more than the claim's margin above its highest level, ``partial`` between.

Over seeds: the mean, sd and a 95 % Student-t interval, and two one-sided t-tests, one that would
confirm the claim's prediction and one that would contradict it (the seeds' sd taken as at least
the sd each seed's IIA has from its pairs alone, ``pair_noise``):

- ``high``: confirm mean IIA > HIGH, contradict mean IIA < HIGH;
- ``low``: on d = IIA - level - margin, confirm mean d < 0, contradict mean d > 0;
- ``falls``: on each seed's slope of IIA against the value the source carries, confirm < 0, contradict > 0;
- ``tracks_accuracy``: confirm that DAS's margin over the full-state swap and random rotation after
  the accuracy transition is > 0 and that the lag between the accuracy and IIA transitions lies
  within +- tolerance (each part must hold: the largest of the three p-values); contradict that
  the margin is < 0 or the lag outside it (the smallest, times three).

Every p-value of every tested row enters one Holm step-down correction; a row ``agrees`` when its
confirming test survives it at ``ALPHA``, ``disagrees`` when its contradicting test does, and is
``undecided`` otherwise. Rows that cannot be tested (the intervention cannot discriminate there,
no trained seed, one seed only, nothing measured) say so and are outside the correction.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from numsym_pl.analysis.claims import Claim
from numsym_pl.analysis.summary import TRAINED, grouped
from numsym_pl.das.iia import wilson_interval
from numsym_pl.das.record import flat_record, seed_summary

HIGH = 0.9  # IIA at or above: the variable aligns ("high")
ALPHA = 0.05  # the family-wise error rate of the Holm correction
TRANSITION = 0.5  # accuracy and IIA "transition": the first check at or above this


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control), in the input order."""
    order = np.argsort(pvalues)
    adjusted, running, m = [0.0] * len(pvalues), 0.0, len(pvalues)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def one_sided_p(values: list[float], alternative: str, noise_sd: float = 0.0) -> float:
    """p of a one-sample t-test of mean 0 against ``greater`` or ``less`` over seeds; nan with fewer
    than two values. The seeds' sd is taken as at least ``noise_sd``, the sd each value has from its
    pairs alone (a binomial proportion's), so that seeds which agree by chance are not read as
    exact; with no spread at all, 0 when every value lies strictly on the alternative's side and 1
    otherwise."""
    x = np.asarray(values, float)
    if len(x) < 2:
        return float("nan")
    sd = max(float(x.std(ddof=1)), noise_sd)
    if sd == 0:
        return 0.0 if (x[0] > 0 if alternative == "greater" else x[0] < 0) else 1.0
    t = float(x.mean()) / (sd / math.sqrt(len(x)))
    dist = stats.t(len(x) - 1)
    return float(dist.sf(t) if alternative == "greater" else dist.cdf(t))


def pair_noise(figures: list[dict]) -> float:
    """The sd a seed's IIA has from its test pairs alone (binomial, averaged over the seeds)."""
    var = [f["iia"] * (1 - f["iia"]) / f["n"] for f in figures if f.get("n")]
    return math.sqrt(float(np.mean(var))) if var else 0.0


def over_das_seeds(record: dict, field: str) -> float | None:
    """An alignment's ``field`` as the mean over its DAS seeds (the record's own where it has one)."""
    reps = [r.get(field) for r in record.get("replicates") or [] if r.get(field) is not None]
    return float(np.mean(reps)) if reps else record.get(field)


def _rival_level(cell: dict, record: dict, rival: str | None) -> tuple[float, float] | None:
    """(coincidence, its upper bound) of the rival's labels with the record's: 1 - the stored share
    on which they differ (``distinguishability``)."""
    if rival is None:
        return None
    mine = f"{record.get('program')}.{'+'.join(record.get('variables') or [])}"
    for d in cell.get("distinguishability") or []:
        if {d["first"], d["second"]} == {mine, rival}:
            return 1 - d["differ"], 1 - d["interval"][0]
    return None


def seed_figure(cell: dict, claim: Claim) -> dict | None:
    """One seed's figures for a claim: its strongest matching alignment's IIA (all test pairs, mean
    over DAS seeds) with the Wilson interval over its pairs, the IIA on effective pairs, and the
    calibrating levels; None when the cell measured none of the claim's alignments."""
    best = None
    for record in cell.get("alignments", []):
        if not claim.matches(record) or record.get("iia") is None:
            continue
        iia = over_das_seeds(record, "iia")
        if best is None or iia > best["iia"]:
            n = (record.get("n") or 0) * max(1, len(record.get("replicates") or []))
            flat = flat_record(record)
            rival = _rival_level(cell, record, claim.rival_name())
            levels = {"floor": over_das_seeds(record, "iia_none"), "rival": None if rival is None else rival[0],
                      "null": flat.get("iia_null")}
            present = {k: v for k, v in levels.items() if v is not None}
            best = {"cell": cell["cell"], "seed": cell.get("seed"), "key": record.get("key"), "iia": iia, "n": n,
                    "interval": wilson_interval(iia, n), "effective": over_das_seeds(record, "iia_effective"),
                    **levels, "level": max(present.values()) if present else 0.0,
                    "level_by": max(present, key=present.get) if present else None,
                    "per_count": record.get("per_count") or {}, "acc": cell["fit"].get("val/acc_trial")}
    return best


def seed_level(figure: dict, claim: Claim) -> str:
    """``high`` (IIA >= HIGH), ``low`` (at most the margin above the highest level) or ``partial``."""
    if figure["iia"] >= HIGH:
        return "high"
    return "low" if figure["iia"] - figure["level"] <= claim.margin else "partial"


def _slope(per_count: dict) -> float | None:
    points = sorted((int(k), v) for k, v in per_count.items() if v is not None)
    if len(points) < 3:
        return None
    x, y = np.array(points, float).T
    return float(np.polyfit(x, y, 1)[0])


def _from_key(key: str) -> dict:
    """The identity of a DAS key ``<program>.<var>[+<var>]/<site>`` (rows that carry no identity)."""
    what, _, site = key.partition("/")
    program, _, variables = what.partition(".")
    return {"program": program, "variables": variables.split("+"), "site": site, "intervention": "das"}


def dynamics_figure(cell: dict, claim: Claim) -> dict | None:
    """One training run's learning dynamics for a ``tracks_accuracy`` claim: the accuracy and IIA
    transitions (first epoch at or above ``TRANSITION``), their lag, and DAS's mean margin over the
    larger of the full-state swap and random rotation at the checks from the accuracy transition on."""
    acc = sorted((a["epoch"], a.get("val/acc_trial")) for a in (cell.get("dynamics") or {}).get("accuracy", [])
                 if a.get("val/acc_trial") is not None)
    das = sorted((d for d in (cell.get("dynamics") or {}).get("das", [])
                  if claim.matches(d.get("alignment") or _from_key(d["key"]))), key=lambda d: d["epoch"])
    if not acc or not das:
        return None
    acc_at = next((e for e, v in acc if v >= TRANSITION), None)
    iia_at = next((d["epoch"] for d in das if d["iia"] >= TRANSITION), None)
    after = [d["iia"] - max(d.get("iia_full_swap") or 0, d.get("iia_random") or 0) for d in das
             if acc_at is not None and d["epoch"] >= acc_at]
    return {"cell": cell["cell"], "acc_at": acc_at, "iia_at": iia_at,
            "lag": None if acc_at is None or iia_at is None else iia_at - acc_at,
            "margin": float(np.mean(after)) if after else None,
            "acc": acc[-1][1], "final_iia": das[-1]["iia"]}


def test_row(claim: Claim, arch: str, task: str, cells: list[dict]) -> dict:
    """A claim's figures and p-values on one group of cells (before the Holm correction)."""
    row = {"claim": claim, "arch": arch, "task": task, "n_cells": len(cells), "p": {}}
    if claim.predicts == "tracks_accuracy":
        figures = [f for r in cells if (f := dynamics_figure(r, claim))]
        row.update(figures=figures, n=len(figures))
        lags = [f["lag"] for f in figures if f["lag"] is not None]
        margins = [f["margin"] for f in figures if f["margin"] is not None]
        row.update(lag=seed_summary(lags), margin=seed_summary(margins), no_transition=len(figures) - len(lags))
        if len(lags) >= 2 and len(margins) >= 2:
            tol = claim.tolerance
            confirm = max(one_sided_p(margins, "greater"), one_sided_p([v - tol for v in lags], "less"),
                          one_sided_p([v + tol for v in lags], "greater"))
            contradict = min(1.0, 3 * min(one_sided_p(margins, "less"), one_sided_p([v - tol for v in lags], "greater"),
                                          one_sided_p([v + tol for v in lags], "less")))
            row["p"] = {"confirm": confirm, "contradict": contradict}
        return _status(row, trained=len(figures))
    trained = [r for r in cells if (r["fit"].get("val/acc_trial") or 0) >= TRAINED]
    figures = [f for r in trained if (f := seed_figure(r, claim))]
    row.update(figures=figures, n=len(figures), n_trained=len(trained),
               iia=seed_summary([f["iia"] for f in figures]),
               effective=seed_summary([f["effective"] for f in figures]),
               levels={k: seed_summary([f[k] for f in figures]) for k in ("floor", "rival", "null", "level")},
               seeds={lv: sum(seed_level(f, claim) == lv for f in figures) for lv in ("high", "partial", "low")})
    noise = pair_noise(figures)
    if claim.predicts == "high":
        d = [f["iia"] - HIGH for f in figures]
        row["p"] = {"confirm": one_sided_p(d, "greater", noise), "contradict": one_sided_p(d, "less", noise)}
    elif claim.predicts == "low":
        d = [f["iia"] - f["level"] - claim.margin for f in figures]
        row["p"] = {"confirm": one_sided_p(d, "less", noise), "contradict": one_sided_p(d, "greater", noise)}
    else:  # falls
        slopes = [s for f in figures if (s := _slope(f["per_count"])) is not None]
        row["slope"] = seed_summary(slopes)
        row["p"] = {"confirm": one_sided_p(slopes, "less"), "contradict": one_sided_p(slopes, "greater")}
    if figures and row["levels"]["level"]["mean"] is not None and row["levels"]["level"]["mean"] >= HIGH:
        row["not_discriminating"] = "the calibrating levels reach the high threshold"
    return _status(row, trained=len(trained))


def _status(row: dict, trained: int) -> dict:
    """Mark a row that cannot enter the correction, with the reason."""
    reason = row["claim"].cannot_discriminate(row["arch"], row["task"]) or row.get("not_discriminating")
    if row["n_cells"] == 0:
        row["status"] = "not measured"
    elif reason:
        row["status"], row["reason"] = "not discriminating", reason
    elif trained == 0:
        row["status"] = "not trained"
    elif row["n"] == 0:
        row["status"] = "not measured"
    elif any(v != v for v in row["p"].values()) or not row["p"]:
        row["status"] = "too few seeds"
    else:
        row["status"] = "tested"
    return row


def judge(results: list[dict], claims: list[Claim]) -> list[dict]:
    """One row per claim and group, each with its figures, its Holm-adjusted p-values (``adjusted``)
    and ``verdict``."""
    groups = grouped(results)
    rows = [test_row(c, a, t, groups.get((a, t), [])) for c in claims for a, t in c.groups()]
    tested = [r for r in rows if r["status"] == "tested"]
    flat = [(r, k) for r in tested for k in ("confirm", "contradict")]
    for (r, k), p in zip(flat, holm([r["p"][k] for r, k in flat])):
        r.setdefault("adjusted", {})[k] = p
    for r in rows:
        if r["status"] != "tested":
            r["verdict"] = r["status"]
        elif r["adjusted"]["confirm"] < ALPHA:
            r["verdict"] = "agrees"
        elif r["adjusted"]["contradict"] < ALPHA:
            r["verdict"] = "disagrees"
        else:
            r["verdict"] = "undecided"
    return rows


def measured_level(row: dict) -> str:
    """The level the seeds' t-interval shows: ``high`` (all of it >= HIGH), ``low`` (all of it at most
    the margin above the mean level), ``partial`` (between), ``uncertain`` (it straddles a bound)."""
    s = row.get("iia") or {}
    if not s.get("interval"):
        return "–"
    lo, hi = s["interval"]
    top = row["levels"]["level"]["mean"] + row["claim"].margin
    return "high" if lo >= HIGH else "low" if hi <= top else "partial" if lo > top and hi < HIGH else "uncertain"


def fmt_summary(s: dict | None, digits: int = 3, bounds: tuple[float, float] | None = None) -> str:
    """``mean ± sd [lo, hi]`` of a ``seed_summary`` (``mean`` alone for one value, – for none); the
    interval shown within ``bounds`` (an IIA's [0, 1])."""
    if not s or not s.get("n"):
        return "–"
    text = f"{s['mean']:.{digits}f}"
    if s["n"] > 1:
        text += f" ± {s['sd']:.{digits}f}"
    if s.get("interval"):
        lo, hi = s["interval"]
        if bounds is not None:
            lo, hi = max(bounds[0], lo), min(bounds[1], hi)
        text += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return text


def fmt_p(p: float | None) -> str:
    return "–" if p is None or (isinstance(p, float) and math.isnan(p)) else f"{p:.2g}"
