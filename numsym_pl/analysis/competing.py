"""The report's section for task families with competing programs (two-type counting, arithmetic,
comparison): per cell, trial accuracy, every program's IIA with its baselines, cause and isolation,
how distinguishable the programs are, and a verdict saying which program aligns best, or that the
data cannot tell, or that none aligns."""

from __future__ import annotations

from numsym_pl.analysis.summary import FAILS, TRAINED, fmt, fmt_interval, mean_sd, ok_cells
from numsym_pl.analysis.summary import markdown_table as _table
from numsym_pl.analysis.summary import verdict as level
from numsym_pl.das.pairs.distinguish import INDISTINGUISHABLE


def _lead(a: dict) -> tuple[str, float | None, tuple | None]:
    """(figure, value, interval): IIA on effective pairs where measured, else on all pairs."""
    field = "iia_effective" if a.get("iia_effective") is not None else "iia"
    return field, a.get(field), (a.get("intervals") or {}).get(field)


def hypothesis(a: dict) -> str:
    return f"{a['program']}.{'+'.join(a['variables'])}"


def cell_verdict(cell: dict) -> str:
    """Which program ranks first and at what level (``high`` / ``partial`` / ``uncertain`` /
    ``low``, from its interval, as the main table's verdicts), from a head-to-head the pairs can decide.

    Programs are ranked by their best alignment's lead figure; the top two are compared on
    alignments whose labels differ on at least ``INDISTINGUISHABLE`` of the pairs (two joint swaps
    that carry the same information agree everywhere and decide nothing): the top program's best
    alignment that has such a rival, against that rival's strongest. ``not distinguishable`` when
    no such pair exists, ``within noise`` when their intervals overlap, ``none aligns`` when no
    interval reaches ``FAILS``."""
    if not (cell["fit"].get("val/acc_trial") or 0) >= TRAINED:
        return "not trained"
    best: dict[str, dict] = {}  # hypothesis -> its best DAS alignment over sites
    for a in cell.get("alignments", []):
        if a.get("intervention", "das") == "das" and _lead(a)[1] is not None:
            if hypothesis(a) not in best or _lead(a)[1] > _lead(best[hypothesis(a)])[1]:
                best[hypothesis(a)] = a
    ranked = sorted(best.values(), key=lambda a: -_lead(a)[1])
    if not ranked:
        return "–"
    top = ranked[0]
    if (_lead(top)[2] or (0, 0))[1] < FAILS:
        return f"none aligns (best {hypothesis(top)}: {_lead(top)[1]:.3f})"
    programs = list(dict.fromkeys(a["program"] for a in ranked))
    if len(programs) == 1:
        return f"{hypothesis(top)} aligns ({_lead(top)[1]:.3f}); no competing program measured"
    first = [a for a in ranked if a["program"] == programs[0]]
    second = [a for a in ranked if a["program"] == programs[1]]
    differ = {frozenset((d["first"], d["second"])): d for d in cell.get("distinguishability") or []}
    apart = lambda x, y: (differ.get(frozenset((hypothesis(x), hypothesis(y)))) or {}).get("distinguishable", False)
    for x in first:  # best first
        rivals = [y for y in second if apart(x, y)]
        if rivals:
            y = rivals[0]
            break
    else:
        return f"not distinguishable: no alignment of {programs[0]} and {programs[1]} has labels that differ on " \
               f"{INDISTINGUISHABLE:.0%} of pairs"
    (_, vx, cx), (_, vy, cy) = _lead(x), _lead(y)
    shown = lambda a: f"{hypothesis(a)} {_lead(a)[1]:.3f} ({level(_lead(a)[2])})"
    if cx is not None and cy is not None and cy[1] >= cx[0] and cx[1] >= cy[0]:
        return f"within noise: {shown(x)} vs {shown(y)}"
    win, lose = (x, y) if vx > vy else (y, x)
    return f"**{win['program']}** ranks first: {shown(win)} vs {shown(lose)}"


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
        f"{INDISTINGUISHABLE:.0%} of pairs for every alignment of the two (IIA cannot rank them); `within noise` "
        "when the intervals overlap; otherwise the program that ranks first, with each figure's level "
        "(`high`: interval >= 0.9, `low`: < 0.5, `partial` between, `uncertain` straddling). The head-to-head "
        "pits the first program's best alignment that has a distinguishable rival against that rival's best "
        "(joint swaps that carry the same information agree on every pair and decide nothing). The recounting "
        "programs (`*_recount`, Ctx-Distr's kind) are a weak test by DAS: their label departs from the target's "
        "own continuation only at the first output after the intervention, so few pairs are effective (see "
        "`n_effective` in results.csv) and their intervals are wide.",
        _table(["cell", "family", "trial acc", "held-out acc", "OOD acc", "trained at", "verdict"], acc_rows),
        "### IIA of every program\n\n*lead*: IIA on effective pairs [95 % CI]; *floor*: the unpatched net; "
        "*identity* / *random* / *full*: raw neurons, random rotations (mean), the whole state; *cause* / "
        "*isolation* (RAVEL): the targets the intervention should change, and those it should leave alone, "
        "all right; *alone*: each variable of a joint alignment intervened on by itself.",
        _table(["cell", "alignment", "lead", "floor", "identity", "random", "full", "cause", "isolation", "alone"],
               iia_rows),
        "### Distinguishability\n\nThe fraction of counterfactual pairs (same trials and positions) on which two "
        "hypotheses' labels differ, with its 95 % interval.",
        _table(["cell", "hypothesis", "against", "labels differ", "distinguishable"], dist_rows)
            if dist_rows else "None measured.",
    ])
