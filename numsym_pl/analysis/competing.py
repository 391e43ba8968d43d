"""The report's section for task families with competing programs (two-type counting, arithmetic,
comparison): per cell, trial accuracy, every program's IIA with its baselines, cause and isolation,
how distinguishable the programs are, and a verdict saying which program aligns best, or that the
data cannot tell, or that none aligns."""

from __future__ import annotations

from numsym_pl.analysis.summary import FAILS, TRAINED, fmt, fmt_interval, mean_sd, ok_cells
from numsym_pl.das.distinguish import INDISTINGUISHABLE


def _table(header: list[str], rows: list[list]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def _lead(a: dict) -> tuple[str, float | None, tuple | None]:
    """(figure, value, interval): IIA on effective pairs where measured, else on all pairs."""
    field = "iia_effective" if a.get("iia_effective") is not None else "iia"
    return field, a.get(field), (a.get("intervals") or {}).get(field)


def hypothesis(a: dict) -> str:
    return f"{a['program']}.{'+'.join(a['variables'])}"


def cell_verdict(cell: dict) -> str:
    """Which program aligns best and by how much; ``not distinguishable`` when its labels and the
    runner-up's differ on fewer than ``INDISTINGUISHABLE`` of the pairs; ``within noise`` when
    their intervals overlap; ``none aligns`` when no interval reaches ``FAILS``."""
    if not (cell["fit"].get("val/acc_trial") or 0) >= TRAINED:
        return "not trained"
    best: dict[str, dict] = {}  # program -> its best DAS alignment by the lead figure
    for a in cell.get("alignments", []):
        if a.get("intervention", "das") != "das" or _lead(a)[1] is None:
            continue
        if a["program"] not in best or _lead(a)[1] > _lead(best[a["program"]])[1]:
            best[a["program"]] = a
    ranked = sorted(best.values(), key=lambda a: -_lead(a)[1])
    if not ranked:
        return "–"
    top = ranked[0]
    field, value, ci = _lead(top)
    if ci is None or ci[1] < FAILS:
        return f"none aligns (best {hypothesis(top)}: {value:.3f})"
    if len(ranked) == 1:
        return f"{hypothesis(top)} aligns ({value:.3f}); no competitor measured"
    second = ranked[1]
    pair = {hypothesis(top), hypothesis(second)}
    d = next((x for x in cell.get("distinguishability") or [] if {x["first"], x["second"]} == pair), None)
    gap = value - _lead(second)[1]
    if d is not None and not d["distinguishable"]:
        return (f"not distinguishable: {hypothesis(top)} vs {hypothesis(second)} (labels differ on "
                f"{d['differ']:.2f} of pairs)")
    other = _lead(second)[2]
    if other is not None and other[1] >= ci[0]:
        return f"{hypothesis(top)} ≥ {hypothesis(second)} within noise (Δ {gap:+.3f})"
    return f"**{hypothesis(top)}** aligns best, by {gap:.3f} over {hypothesis(second)}"


def competing_section(results: list[dict]) -> str:
    """Markdown for every finished cell of a family other than numeric equivalence ('' if none)."""
    cells = [r for r in ok_cells(results) if r.get("task_family") not in (None, "numeric_equivalence")]
    if not cells:
        return ""
    acc_rows, iia_rows, dist_rows = [], [], []
    for r in cells:
        acc = [fmt(mean_sd([r["fit"].get(k)])) for k in ("val/acc_trial", "val/acc_trial_heldout", "val/acc_trial_ood")]
        acc_rows.append([r["cell"], r["task_family"], *acc, r["fit"].get("trained/epoch", "–"), cell_verdict(r)])
        for a in r.get("alignments", []):
            field, value, ci = _lead(a)
            joint = (a.get("cause_isolation") or {}).get("all") or {}
            alone = "; ".join(f"{v} {x:.3f}" for v, x in (a.get("iia_alone") or {}).items())
            iia_rows.append([r["cell"], f"{hypothesis(a)}/{a['site']}", fmt_interval(mean_sd([value]), ci),
                             fmt(mean_sd([a.get("iia_none")])), fmt(mean_sd([a.get("iia_identity")])),
                             fmt(mean_sd([a.get("iia_random")])), fmt(mean_sd([a.get("iia_full_swap")])),
                             fmt(mean_sd([joint.get("cause")])), fmt(mean_sd([joint.get("isolation")])), alone or "–"])
        for d in r.get("distinguishability") or []:
            dist_rows.append([r["cell"], d["first"], d["second"], f"{d['differ']:.3f} [{d['interval'][0]:.3f}, "
                              f"{d['interval'][1]:.3f}]", "yes" if d["distinguishable"] else "**no**"])
    return "\n\n".join([
        "## Competing programs (harder task families)",
        "Trial accuracy (greedy decoding, the whole answer exact) in distribution, on held-out combinations "
        "never trained on, and on OOD values (evaluation only); *trained at*: the epoch the fit stopped "
        "trained (– when it ran to its ceiling). The verdict compares each program's best alignment by IIA "
        "on effective pairs (all pairs where not measured): `none aligns` when no interval reaches "
        f"{FAILS}; `not distinguishable` when the two best programs' labels differ on fewer than "
        f"{INDISTINGUISHABLE:.0%} of pairs (IIA cannot rank them there); `within noise` when the intervals overlap.",
        _table(["cell", "family", "trial acc", "held-out acc", "OOD acc", "trained at", "verdict"], acc_rows),
        "### IIA of every program\n\n*lead*: IIA on effective pairs [95 % CI]; *floor*: the unpatched net; "
        "*identity* / *random* / *full*: raw neurons, random rotations (mean), the whole state; *cause* / "
        "*isolation* (RAVEL): the targets the intervention should change, and those it should leave alone, "
        "all right; *alone*: each variable of a joint alignment intervened on by itself.",
        _table(["cell", "alignment", "lead", "floor", "identity", "random", "full", "cause", "isolation", "alone"], iia_rows),
        "### Distinguishability\n\nThe fraction of counterfactual pairs (same trials and positions) on which two "
        "hypotheses' labels differ, with its 95 % interval.",
        _table(["cell", "hypothesis", "against", "labels differ", "distinguishable"], dist_rows) if dist_rows else "None measured.",
    ])
